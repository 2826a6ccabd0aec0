"""Progress / loyalty bar: how far a recipient is towards a goal, with a personalised label.

The label is a template over the profile fields plus the bar's own numbers (``value``,
``goal``, ``remaining``, ``percent``), formatted for the params' locale. Once the value reaches
the goal the bar is full and the label gives way to ``reached_label``. The percentage and the
fill always agree: no fill reads 0%, a full bar 100% (only once the goal is reached), and any
progress short of 1% reads <1% over a sliver of fill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from babel.numbers import format_decimal, format_percent
from PIL import Image, ImageChops, ImageDraw, ImageFont
from pydantic import Field

from renderers.base import Renderer, RendererParams, RenderRequest
from renderers.card import (
    LINE_SPACING,
    Align,
    FontFamily,
    LocaleName,
    NumberOrTemplate,
    TemplateText,
    paint,
    resolve_number,
    rounded_mask,
    safe_fill,
    x_for,
)
from renderers.colors import Color, canvas, ink
from renderers.fonts import DEFAULT_FAMILY, Weight, load_font
from renderers.templating import placeholders, typeset
from renderers.text_layout import MIN_FONT_SIZE, fit

MIN_FILL = 2
"""Pixels (times the scale) of fill that any progress shows, and of track that any progress
short of the goal leaves, so neither looks like 0% or 100%."""
REACHED_LABELS = {
    "en": "Goal reached!",
    "nl": "Doel bereikt!",
    "de": "Ziel erreicht!",
    "fr": "Objectif atteint\u202f!",
}
"""The default ``reached_label`` by the locale's language; other languages show no label."""
LABEL_VARIABLES = frozenset({"value", "goal", "remaining", "percent"})
"""Variables the renderer gives the label, on top of (and instead of) profile fields."""
_DEPENDS_ON = {
    "value": {"value"},
    "goal": {"goal"},
    "remaining": {"value", "goal"},
    "percent": {"value", "goal"},
}


class ProgressParams(RendererParams):
    """Parameters of a progress bar towards a goal."""

    type: Literal["progress"] = "progress"
    background: Color = "#FFFFFF"
    value: NumberOrTemplate = Field(description="Progress so far, e.g. {{ points }}.")
    goal: NumberOrTemplate = Field(description="The target; the bar is full at this value.")
    label: TemplateText = Field(
        "",
        description="E.g. '{{ remaining }} points to Gold'. Besides profile fields it may use "
        "value, goal, remaining and percent.",
    )
    reached_label: TemplateText | None = Field(
        None,
        description="Shown instead of the label once the value reaches the goal, e.g. 'Gold "
        "reached!' (it may use the same variables). Unset: a label that uses remaining gives "
        "way to the locale's 'Goal reached!' (en, nl, de, fr; none in other languages), any "
        "other label stays.",
    )
    label_size: int = Field(24, ge=6, le=400)
    label_color: Color = "#111827"
    label_weight: Weight = "bold"
    label_max_lines: int = Field(2, ge=1, le=20)
    label_position: Literal["above", "below"] = "above"
    align: Align = "left"
    family: FontFamily = DEFAULT_FAMILY
    track_color: Color = "#E5E7EB"
    fill_color: Color = "#16A34A"
    bar_height: int = Field(20, ge=2, le=400)
    radius: int = Field(10, ge=0, le=500, description="Corner radius, at most half the height.")
    show_percentage: bool = True
    percentage_size: int = Field(18, ge=6, le=400)
    percentage_color: Color = "#111827"
    locale: LocaleName = "nl_NL"
    padding: int = Field(24, ge=0, le=500)
    gap: int = Field(12, ge=0, le=200, description="Space between the label, bar and percentage.")
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per placeholder when the profile lacks it."
    )
    typography: bool = Field(
        True,
        description="Typographic quotes, apostrophes and minus signs in the label; false draws "
        "it as written.",
    )


@dataclass(frozen=True)
class Progress:
    """The resolved numbers of a bar; ``invalid`` names those that were missing or invalid."""

    value: Decimal
    goal: Decimal
    invalid: frozenset[str]

    @classmethod
    def resolve(cls, params: ProgressParams, request: RenderRequest) -> Progress:
        """Value and goal from the params and the profile.

        A missing or invalid value counts as 0; a missing, invalid, zero or negative goal
        leaves the bar empty.
        """
        value = resolve_number(params.value, request, params.defaults, params.locale)
        goal = resolve_number(params.goal, request, params.defaults, params.locale)
        invalid = set()
        if value is None:
            invalid.add("value")
            value = Decimal(0)
        if goal is None or goal <= 0:
            invalid.add("goal")
            goal = Decimal(0)
        return cls(value, goal, frozenset(invalid))

    @property
    def fraction(self) -> Decimal:
        """Progress between 0 and 1."""
        if not self.goal:
            return Decimal(0)
        return min(max(self.value / self.goal, Decimal(0)), Decimal(1))

    @property
    def reached(self) -> bool:
        """Whether the value has reached (or passed) a valid goal."""
        return self.goal > 0 and self.value >= self.goal

    @property
    def percent(self) -> int:
        """Whole percent, floored so the bar says 100% only once the goal is reached."""
        return int((self.fraction * 100).to_integral_value(ROUND_FLOOR))

    def shown_percent(self, locale: str) -> str:
        """The percent as the bar shows it: ``<1`` for progress short of 1%, else ``percent``
        (formatted for ``locale``)."""
        if self.fraction > 0 and self.percent == 0:
            return "<" + format_decimal(1, locale=locale)
        return format_decimal(self.percent, locale=locale)

    def filled(self, width: int, scale: int) -> int:
        """Pixels of a ``width``-pixel track to fill: all of it once the goal is reached, none
        without progress, else the share, but at least ``MIN_FILL`` and leaving ``MIN_FILL``."""
        if self.reached:
            return width
        if self.fraction <= 0:
            return 0
        least = MIN_FILL * scale
        return max(0, min(width - least, max(least, round(width * self.fraction))))

    @property
    def remaining(self) -> Decimal:
        """How much is left to reach the goal (never negative)."""
        return max(self.goal - self.value, Decimal(0))

    def variables(self, locale: str, defaults: Mapping[str, str]) -> dict[str, str | None]:
        """The label's variables, formatted for ``locale``.

        One that depends on a missing or invalid number gives way to its default, if any
        (None makes ``fill`` use the default).
        """
        shown = {
            "value": format_decimal(self.value, locale=locale),
            "goal": format_decimal(self.goal, locale=locale),
            "remaining": format_decimal(self.remaining, locale=locale),
            "percent": self.shown_percent(locale),
        }
        return {
            name: None if _DEPENDS_ON[name] & self.invalid and name in defaults else text
            for name, text in shown.items()
        }


def label_source(params: ProgressParams, progress: Progress) -> str:
    """The label template to fill: ``reached_label`` once the goal is reached (by default the
    locale's "Goal reached!" instead of a label that says what remains), else ``label``."""
    if not progress.reached:
        return params.label
    if params.reached_label is not None:
        return params.reached_label
    if "remaining" in placeholders(params.label):
        return REACHED_LABELS.get(params.locale.split("_")[0], "")
    return params.label


class ProgressRenderer(Renderer[ProgressParams]):
    """Draws a rounded track, the fill up to the (clamped) progress, a percentage and a label."""

    type = "progress"
    params_model = ProgressParams

    def fields_used(self, params: ProgressParams) -> frozenset[str]:
        used = (placeholders(params.label) | placeholders(params.reached_label or "")) - (
            LABEL_VARIABLES
        )
        for number in (params.value, params.goal):
            if isinstance(number, str):
                used |= placeholders(number)
        return used

    def render(self, params: ProgressParams, request: RenderRequest) -> Image.Image:
        image = canvas((request.width, request.height), params.background)
        scale = request.scale
        padding, gap = params.padding * scale, params.gap * scale
        left, width = padding, max(1, request.width - 2 * padding)
        height = max(1, request.height - 2 * padding)
        progress = Progress.resolve(params, request)

        bar_height = min(params.bar_height * scale, height)
        row_height, bar_width = bar_height, width
        percentage = _percentage(params, progress, width, height, scale)
        if percentage is not None:
            _, font, reserved = percentage
            ascent, descent = font.getmetrics()
            row_height = min(height, max(bar_height, ascent + descent))
            bar_width = max(1, width - reserved - gap)

        fields = {**request.fields, **progress.variables(params.locale, params.defaults)}
        source = label_source(params, progress)
        label = safe_fill(source, fields, params.defaults, request.max_text_length)
        if params.typography:
            label = typeset(label, params.locale)
        room = height - row_height - gap
        fitted = None
        if label and room >= round(MIN_FONT_SIZE * LINE_SPACING):
            fitted = fit(
                label,
                family=params.family,
                weight=params.label_weight,
                size=params.label_size * scale,
                max_width=width,
                max_height=room,
                max_lines=params.label_max_lines,
                line_spacing=LINE_SPACING,
                balance=True,
            )
        label_height = len(fitted.lines) * fitted.line_height if fitted else 0
        total = row_height + (gap + label_height if label_height else 0)
        top = padding + max(0, (height - total) // 2)
        row_top, label_top = top, top + row_height + gap
        if params.label_position == "above" and label_height:
            label_top, row_top = top, top + label_height + gap

        bar_top = row_top + (row_height - bar_height) // 2
        _draw_bar(image, params, (left, bar_top), bar_width, bar_height, progress, scale)
        draw = ImageDraw.Draw(image)
        label_color, percentage_color = (
            ink(image, params.label_color),
            ink(image, params.percentage_color),
        )
        if percentage is not None:
            text, font, _ = percentage
            center = (left + bar_width + gap, row_top + row_height / 2)
            draw.text(center, text, font=font, fill=percentage_color, anchor="lm")
        if fitted is not None:
            for line in fitted.lines:
                x = x_for(params.align, left, width, fitted.font.getlength(line))
                draw.text((x, label_top), line, font=fitted.font, fill=label_color)
                label_top += fitted.line_height
        return image


def _percentage(
    params: ProgressParams, progress: Progress, width: int, height: int, scale: int
) -> tuple[str, ImageFont.FreeTypeFont, int] | None:
    """The percentage text, its font and the width it reserves (if shown).

    The width is that of 100%, so the bar's length does not vary with the progress; the font
    shrinks until that takes at most a third of the width and fits the height.
    """
    if not params.show_percentage:
        return None
    widest = format_percent(1, locale=params.locale)
    size = params.percentage_size * scale
    while True:
        font = load_font(params.family, "bold", size)
        ascent, descent = font.getmetrics()
        fits = font.getlength(widest) <= width / 3 and ascent + descent <= height
        if fits or size <= MIN_FONT_SIZE:
            break
        size = max(MIN_FONT_SIZE, int(size * 0.9))
    text = format_percent(Decimal(progress.percent) / 100, locale=params.locale)
    if progress.fraction > 0 and progress.percent == 0:
        text = "<" + format_percent(Decimal("0.01"), locale=params.locale)
    return text, font, round(font.getlength(widest))


def _draw_bar(
    image: Image.Image,
    params: ProgressParams,
    origin: tuple[int, int],
    width: int,
    height: int,
    progress: Progress,
    scale: int,
) -> None:
    """The track, then the fill clipped to the track's rounded shape."""
    radius = params.radius * scale
    track = rounded_mask(width, height, radius)
    paint(image, origin, track, params.track_color)
    filled = progress.filled(width, scale)
    if filled > 0:
        fill_mask = ImageChops.multiply(
            rounded_mask(filled, height, radius), track.crop((0, 0, filled, height))
        )
        paint(image, origin, fill_mask, params.fill_color)


RENDERER = ProgressRenderer()
