"""Banner: personalised text layers on a colour, a gradient or an uploaded image."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from jinja2 import UndefinedError
from PIL import Image, ImageChops, ImageDraw, ImageOps
from pydantic import BaseModel, ConfigDict, Field, field_validator

from renderers.base import ContentUnavailable, Renderer, RendererParams, RenderRequest
from renderers.card import LocaleName
from renderers.colors import Color, canvas, ink
from renderers.fonts import DEFAULT_FAMILY, FONT_FILES, Weight
from renderers.templating import fill, placeholders, template_error, typeset
from renderers.text_layout import (
    MIN_FONT_SIZE,
    FittedText,
    TextBox,
    fit_group,
    min_size_for,
    text_width,
)


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
    line_height: float | None = Field(
        None, ge=0.8, le=3.0, description="Line height as a multiple of the font size."
    )
    shrink: bool = Field(True, description="Shrink the font until the text fits its box.")
    min_font_size: int | None = Field(
        None,
        ge=MIN_FONT_SIZE,
        le=400,
        description="The least the line shrinks to (at most font_size); by default half its "
        "font size, at least 8 px.",
    )
    balance: bool = Field(
        True, description="Balance the lengths of wrapped lines (no lone word on the last)."
    )

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


class Gradient(BaseModel):
    """A two-colour linear gradient."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Color = Field(alias="from")
    to: Color
    direction: Literal["vertical", "horizontal", "diagonal"] = "vertical"


class BannerParams(RendererParams):
    """Parameters of a text banner."""

    type: Literal["banner"] = "banner"
    background: Color = "#FFFFFF"
    gradient: Gradient | None = None
    background_image: str | None = Field(
        None, pattern=r"^sha256:[0-9a-f]{64}$", description="Uploaded image asset id."
    )
    background_fit: Literal["cover", "contain", "stretch"] = "cover"
    lines: list[TextLine] = Field(min_length=1, max_length=10)
    padding: int = Field(24, ge=0, le=500)
    valign: Literal["top", "middle", "bottom"] = "middle"
    line_spacing: float = Field(1.25, ge=0.8, le=3.0)
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per placeholder when the profile lacks it."
    )
    locale: LocaleName = Field("en", description="The texts' language, for their quotation marks.")
    typography: bool = Field(
        True,
        description="Typographic quotes, apostrophes and minus signs; false draws the texts "
        "as written.",
    )


class BannerRenderer(Renderer[BannerParams]):
    """Draws each text line, wrapped and shrunk to fit, stacked and aligned."""

    type = "banner"
    params_model = BannerParams

    def fields_used(self, params: BannerParams) -> frozenset[str]:
        return frozenset().union(*(placeholders(line.text) for line in params.lines))

    def assets_used(self, params: BannerParams) -> frozenset[str]:
        return frozenset({params.background_image} if params.background_image else ())

    def render(self, params: BannerParams, request: RenderRequest) -> Image.Image:
        image = background(params, request)
        draw = ImageDraw.Draw(image)
        padding = params.padding * request.scale
        blocks = layout(params, request)
        total = sum(len(f.lines) * f.line_height for _, f in blocks)
        y = {
            "top": padding,
            "middle": (request.height - total) // 2,
            "bottom": request.height - padding - total,
        }[params.valign]
        for line, fitted in blocks:
            for text in fitted.lines:
                width = text_width(fitted.font, text)
                x = {
                    "left": padding,
                    "center": (request.width - width) / 2,
                    "right": request.width - padding - width,
                }[line.align]
                draw.text((x, y), text, font=fitted.font, fill=ink(image, line.color))
                y += fitted.line_height
        return image


def layout(params: BannerParams, request: RenderRequest) -> list[tuple[TextLine, FittedText]]:
    """Each line's text filled, typeset and fitted, all together in the padded box
    (``fit_group``: they shrink together, keeping their size ratios, each no smaller than its
    ``min_font_size``)."""
    scale = request.scale
    padding = params.padding * scale
    boxes = []
    for line, text in zip(params.lines, line_texts(params, request), strict=True):
        size = line.font_size * scale
        least = min_size_for(size) if line.min_font_size is None else line.min_font_size * scale
        boxes.append(
            TextBox(
                text,
                line.family,
                line.weight,
                size,
                line.max_lines,
                line.line_height or params.line_spacing,
                min_size=least,
                shrink=line.shrink,
                balance=line.balance,
            )
        )
    fitted = fit_group(
        boxes,
        max_width=max(1, request.width - 2 * padding),
        max_height=max(1, request.height - 2 * padding),
    )
    return list(zip(params.lines, fitted, strict=True))


def line_texts(params: BannerParams, request: RenderRequest) -> list[str]:
    """Each line's text as the banner draws it: filled (``line_text``), then typeset."""
    texts = [line_text(line, params.defaults, request) for line in params.lines]
    if params.typography:
        texts = [typeset(text, params.locale) for text in texts]
    return texts


def line_text(line: TextLine, defaults: dict[str, str], request: RenderRequest) -> str:
    """The line's template filled from the profile; if the profile's values break it (a
    mapping multiplied, a number too long to print), from the defaults alone.

    Raises ContentUnavailable when it needs a field that neither has (the server serves the
    fallback); an error that no profile causes (``{{ 1 / 0 }}``) propagates as a render error.
    """
    try:
        return fill(line.text, request.fields, defaults, request.max_text_length)
    except Exception:  # any expression can fail on arbitrary profile data
        try:
            return fill(line.text, {}, defaults, request.max_text_length)
        except UndefinedError as missing:
            raise ContentUnavailable(f"a banner line needs a field: {missing}") from None


def background(params: BannerParams, request: RenderRequest) -> Image.Image:
    """A fresh canvas: the uploaded image, else the gradient, else the colour (RGBA when the
    colour, shown around a contained image or alone, has alpha; else RGB)."""
    size = (request.width, request.height)
    asset_id = params.background_image
    uploaded = request.assets.get(asset_id) if asset_id else None
    if asset_id and uploaded is not None:
        return _fitted((asset_id, size, params.background_fit, params.background), uploaded).copy()
    if params.gradient is not None:
        g = params.gradient
        return _gradient(size, g.from_, g.to, g.direction).copy()
    return canvas(size, params.background)


@lru_cache(maxsize=64)
def _gradient(size: tuple[int, int], start: str, end: str, direction: str) -> Image.Image:
    vertical = Image.linear_gradient("L")  # 256×256, black at the top to white at the bottom
    horizontal = vertical.transpose(Image.Transpose.TRANSPOSE)
    ramp = {
        "vertical": vertical,
        "horizontal": horizontal,
        "diagonal": ImageChops.add(vertical, horizontal, scale=2),
    }[direction]
    mask = ramp.resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


FitKey = tuple[str, tuple[int, int], str, str]
_FIT_CACHE: dict[FitKey, Image.Image] = {}


def _fitted(key: FitKey, source: Image.Image) -> Image.Image:
    """``source`` (the asset named in ``key``) fitted to the size, by the mode, in the key."""
    _, size, fit, fill = key
    cached = _FIT_CACHE.get(key)
    if cached is not None:
        return cached
    rgb = source.convert("RGB")
    if fit == "cover":
        result = ImageOps.fit(rgb, size, Image.Resampling.LANCZOS)
    elif fit == "contain":
        result = canvas(size, fill)
        inner = ImageOps.contain(rgb, size, Image.Resampling.LANCZOS)
        result.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    else:
        result = rgb.resize(size, Image.Resampling.LANCZOS)
    if len(_FIT_CACHE) > 64:
        _FIT_CACHE.clear()
    _FIT_CACHE[key] = result
    return result


RENDERER = BannerRenderer()
