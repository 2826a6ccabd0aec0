"""Banner: a personalised text image on a solid background."""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, field_validator

from renderers.base import Renderer, RendererParams, RenderRequest
from renderers.colors import Color
from renderers.fonts import DEFAULT_FAMILY, FONT_FILES, Weight
from renderers.templating import fill, placeholders, template_error
from renderers.text_layout import fit


class TextLine(BaseModel):
    """One text layer: a template such as ``Hallo {{ first_name }}`` and its styling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(max_length=1000)
    font_size: int = Field(32, ge=6, le=400)
    color: Color = "#000000"
    align: Literal["left", "center", "right"] = "center"
    family: str = DEFAULT_FAMILY
    weight: Weight = "regular"
    max_lines: int = Field(2, ge=1, le=20)

    @field_validator("text")
    @classmethod
    def _valid_template(cls, text: str) -> str:
        if problem := template_error(text):
            raise ValueError(problem)
        return text

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str) -> str:
        if not any(f == family for f, _ in FONT_FILES):
            raise ValueError(f"unknown font family {family!r}")
        return family


class BannerParams(RendererParams):
    """Parameters of a text banner."""

    type: Literal["banner"] = "banner"
    background: Color = "#FFFFFF"
    lines: list[TextLine] = Field(min_length=1, max_length=10)
    padding: int = Field(24, ge=0, le=500)
    valign: Literal["top", "middle", "bottom"] = "middle"
    line_spacing: float = Field(1.25, ge=0.8, le=3.0)
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per placeholder when the profile lacks it."
    )


class BannerRenderer(Renderer[BannerParams]):
    """Draws each text line, wrapped and shrunk to fit, stacked and aligned."""

    type = "banner"
    params_model = BannerParams

    def fields_used(self, params: BannerParams) -> frozenset[str]:
        return frozenset().union(*(placeholders(line.text) for line in params.lines))

    def render(self, params: BannerParams, request: RenderRequest) -> Image.Image:
        image = Image.new("RGB", (request.width, request.height), params.background)
        draw = ImageDraw.Draw(image)
        padding = params.padding * request.scale
        box_width = max(1, request.width - 2 * padding)
        box_height = max(1, request.height - 2 * padding)
        share = box_height // len(params.lines)
        blocks = []
        for line in params.lines:
            text = fill(line.text, request.fields, params.defaults, request.max_text_length)
            fitted = fit(
                text,
                family=line.family,
                weight=line.weight,
                size=line.font_size * request.scale,
                max_width=box_width,
                max_height=share,
                max_lines=line.max_lines,
                line_spacing=params.line_spacing,
            )
            blocks.append((line, fitted))
        total = sum(len(f.lines) * f.line_height for _, f in blocks)
        y = {
            "top": padding,
            "middle": (request.height - total) // 2,
            "bottom": request.height - padding - total,
        }[params.valign]
        for line, fitted in blocks:
            for text in fitted.lines:
                width = fitted.font.getlength(text)
                x = {
                    "left": padding,
                    "center": (request.width - width) / 2,
                    "right": request.width - padding - width,
                }[line.align]
                draw.text((x, y), text, font=fitted.font, fill=line.color)
                y += fitted.line_height
        return image


RENDERER = BannerRenderer()
