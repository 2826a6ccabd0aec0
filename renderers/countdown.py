"""Countdown timer: an animated GIF that counts down to a deadline, one frame per second.

The deadline is absolute, read from a profile field, evergreen (a fixed time after the
recipient's first open) or recurring (the next daily or weekly cut-off, ``renderers.deadlines``);
:func:`resolve_deadline` is a pure function of (params, request), and the cache key holds the
resolved deadline instead of the profile, so every recipient with the same deadline shares one
cached GIF per second.

The GIF plays once and stays on its last frame (no loop extension) unless ``loop`` asks for
repeats: a timer that loops jumps back in time. When the deadline passes within the frames, the
last frame is the expired state, not zeros.

Drawing works in palette-index space: an ``L`` image whose values are indices into one shared
palette (background, then an anti-aliasing ramp from the background to the digit colour, then
one to the label colour). Text is drawn once as an anti-aliased mask and mapped to ramp indices
by a lookup table; digit tiles are cached per font size, so a frame is the previous one with the
changed digit tiles pasted in, and only the box around them is encoded.

Once the deadline has passed the output is one still frame that no longer depends on the moment
(so it is cached once, not per second): the expired text on its background, or an uploaded image
(``expired_image``, else ``background_image``, supplied decoded in ``request.assets``) with the
text drawn over it in full colour. A missing or unusable image falls back to the text state.
``display="static"`` draws a still message formatted from the deadline ("Ends Sunday 23:59")
instead of the timer, for a variant shown to Apple MPP's prefetch.

With a ``background_image`` the frames are drawn in index space as usual, then drawn over the
picture and mapped to one palette made for it (its own colours plus ramps to the digit and label
colours, worked out once per picture), so each later frame is still only its changed box.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import string
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from PIL import GifImagePlugin, Image, ImageColor, ImageDraw, ImageFont
from pydantic import AwareDatetime, Field, field_validator, model_validator

from renderers.base import (
    MEDIA_TYPES,
    ContentUnavailable,
    RenderedImage,
    Renderer,
    RendererParams,
    RenderRequest,
    choose_format,
    encode_image,
)
from renderers.card import AssetId
from renderers.colors import Color
from renderers.deadlines import RecurringDeadline
from renderers.fonts import DEFAULT_FAMILY, FONT_FILES, Weight, load_font
from renderers.text_layout import fit
from renderers.time_zones import time_zone

Unit = Literal["days", "hours", "minutes", "seconds"]
Display = Literal["timer", "static"]
Language = Literal["en", "nl", "de", "fr"]
ImageFit = Literal["cover", "contain"]
UNIT_SECONDS: dict[Unit, int] = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
ALL_UNITS: tuple[Unit, ...] = ("days", "hours", "minutes", "seconds")
LABELS: dict[Language, dict[Unit, str]] = {
    "en": {"days": "days", "hours": "hours", "minutes": "minutes", "seconds": "seconds"},
    "nl": {"days": "dagen", "hours": "uren", "minutes": "minuten", "seconds": "seconden"},
    "de": {"days": "Tage", "hours": "Stunden", "minutes": "Minuten", "seconds": "Sekunden"},
    "fr": {"days": "jours", "hours": "heures", "minutes": "minutes", "seconds": "secondes"},
}
STATIC_TEXTS: dict[Language, str] = {
    "en": "Ends {weekday} {time}",
    "nl": "Eindigt {weekday} {time}",
    "de": "Endet {weekday} {time}",
    "fr": "Se termine {weekday} à {time}",
}
STATIC_PLACEHOLDERS = frozenset({"weekday", "day", "month", "year", "time", "date"})
RECIPIENT_ZONE = "recipient"
TIME_ZONE_FIELD = "time_zone"
FRAME_MILLISECONDS = 1000
MIN_FONT_SIZE = 6
RAMP_LEVELS = 15
"""Anti-aliasing shades per colour; 1 + 2 × 15 colours fit a 32-entry GIF colour table."""
BACKGROUND_INDEX = 0
DIGIT_RAMP = 1
LABEL_RAMP = DIGIT_RAMP + RAMP_LEVELS
EXPIRED = "expired"
"""The moment's place in the cache material once the deadline has passed."""
STATIC = "static"
"""The moment's place in the cache material of a static message (it depends on the deadline)."""
DEADLINE_MODES = ("deadline", "deadline_field", "evergreen_seconds", "recurring")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class DeadlineUnavailable(ContentUnavailable, ValueError):
    """The request lacks what the deadline needs (a profile field, a moment); serve the fallback."""


class CountdownParams(RendererParams):
    """Parameters of a countdown timer; exactly one of the four deadline modes is given."""

    type: Literal["countdown"] = "countdown"
    deadline: AwareDatetime | None = Field(
        None, description="Absolute deadline with a UTC offset, e.g. 2026-12-24T18:00:00+01:00."
    )
    deadline_field: str | None = Field(
        None, description="Profile field holding an ISO 8601 deadline, per recipient."
    )
    evergreen_seconds: int | None = Field(
        None, ge=1, le=366 * 86400, description="Deadline this long after the first open."
    )
    recurring: RecurringDeadline | None = Field(
        None, description="The next daily or weekly cut-off after the open, in time_zone."
    )
    time_zone: str = Field(
        "UTC",
        description="IANA zone of naive profile deadlines, recurring cut-offs and the static "
        'text, or "recipient" (profile time_zone).',
    )
    fallback_time_zone: str = Field(
        "UTC", description='Zone when time_zone is "recipient" and the profile has no valid one.'
    )
    units: list[Unit] = Field(default_factory=lambda: list(ALL_UNITS), min_length=1)
    language: Language = "en"
    labels: dict[Unit, Annotated[str, Field(max_length=30)]] = Field(
        default_factory=dict, description="Label per unit, overriding the language's labels."
    )
    background: Color = "#FFFFFF"
    digit_color: Color = "#111111"
    label_color: Color = "#666666"
    family: str = DEFAULT_FAMILY
    weight: Weight = "bold"
    label_weight: Weight = "regular"
    digit_font_size: int = Field(56, ge=MIN_FONT_SIZE, le=400)
    label_font_size: int = Field(16, ge=MIN_FONT_SIZE, le=200)
    separator: str = Field(":", max_length=3, description='Between units; "" for none.')
    padding: int = Field(12, ge=0, le=200)
    frames: int = Field(60, ge=1, le=120, description="Seconds of animation, one frame each.")
    loop: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Absent: play once and stay on the last frame; 0 forever (the timer jumps "
        "back), n plays n times.",
    )
    background_image: AssetId | None = Field(
        None, description="Uploaded image behind the timer (and the messages)."
    )
    background_fit: ImageFit = Field(
        "cover",
        description="cover: fill the block, cropping; contain: all of it on background.",
    )
    display: Display = Field(
        "timer", description="static: a still static_text instead of the ticking timer."
    )
    static_text: str = Field(
        "",
        max_length=200,
        description="With display static; placeholders {weekday} {day} {month} {year} {time} "
        '{date} from the deadline in time_zone; empty: the language\'s "Ends {weekday} {time}".',
    )
    expired_text: str = Field(
        "", max_length=200, description="Shown once the deadline has passed; empty: zeros."
    )
    message_font_size: int = Field(
        24, ge=MIN_FONT_SIZE, le=400, description="Size of expired_text and static_text."
    )
    message_weight: Weight = "bold"
    message_color: Color | None = Field(None, description="Of the messages; absent: digit_color.")
    message_max_lines: int = Field(
        3, ge=1, le=6, description="Messages wrap within the padding, shrinking to fit."
    )
    expired_background: Color | None = None
    expired_image: AssetId | None = Field(
        None,
        description="Uploaded image shown once the deadline has passed, expired_text over it.",
    )
    expired_image_fit: ImageFit = Field(
        "cover",
        description="cover: fill the block, cropping; contain: all of it on expired_background.",
    )

    @field_validator("deadline_field")
    @classmethod
    def _field_name(cls, name: str | None) -> str | None:
        if name is not None and not _FIELD_NAME.match(name):
            raise ValueError("must be a profile field name (letters, digits, _ . -)")
        return name

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        if name != RECIPIENT_ZONE:
            time_zone(name)
        return name

    @field_validator("fallback_time_zone")
    @classmethod
    def _known_fallback_zone(cls, name: str) -> str:
        time_zone(name)
        return name

    @field_validator("units")
    @classmethod
    def _canonical_units(cls, units: list[Unit]) -> list[Unit]:
        if len(set(units)) != len(units):
            raise ValueError("units must not repeat")
        return [unit for unit in ALL_UNITS if unit in units]

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str) -> str:
        if not any(f == family for f, _ in FONT_FILES):
            raise ValueError(f"unknown font family {family!r}")
        return family

    @field_validator("static_text")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"{exc} (write {{{{ and }}}} for braces)") from None
        for _, name, spec, conversion in parsed:
            if name is not None and (name not in STATIC_PLACEHOLDERS or spec or conversion):
                known = " ".join(f"{{{known}}}" for known in sorted(STATIC_PLACEHOLDERS))
                raise ValueError(f"unknown placeholder {{{name}}}; use {known}")
        return text

    @model_validator(mode="after")
    def _one_deadline_mode(self) -> CountdownParams:
        given = [name for name in DEADLINE_MODES if getattr(self, name) is not None]
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(
                "give exactly one of deadline, deadline_field, evergreen_seconds or recurring "
                f"({found})"
            )
        return self

    def label(self, unit: Unit) -> str:
        """The label shown under ``unit``."""
        return self.labels.get(unit, LABELS[self.language][unit])

    def uses_zone(self) -> bool:
        """Whether the output depends on time_zone (naive profile deadlines, recurring cut-offs
        or the static text)."""
        return (
            self.deadline_field is not None or self.recurring is not None or self.display == STATIC
        )


def _aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` with naive values taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _parse_deadline(value: Any) -> dt.datetime | None:
    """A datetime from a profile value: datetime, ISO 8601 string or epoch seconds."""
    try:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value.strip())
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def deadline_zone(params: CountdownParams, fields: Mapping[str, Any]) -> ZoneInfo:
    """The zone of naive profile deadlines, recurring cut-offs and the static text: the
    configured one, or the recipient's (the fallback when the profile has no valid one)."""
    if params.time_zone != RECIPIENT_ZONE:
        return time_zone(params.time_zone)
    name = fields.get(TIME_ZONE_FIELD)
    if isinstance(name, str):
        try:
            return time_zone(name)
        except ValueError:
            pass
    return time_zone(params.fallback_time_zone)


def resolve_deadline(params: CountdownParams, request: RenderRequest) -> dt.datetime:
    """The deadline in UTC for this request; a pure function of (params, request).

    Raises DeadlineUnavailable when the profile field is missing or unreadable, or an evergreen
    or recurring countdown has no moment to count from.
    """
    try:
        if params.deadline is not None:
            return params.deadline.astimezone(dt.UTC)
        if params.recurring is not None:
            if request.moment is None:
                raise DeadlineUnavailable("a recurring countdown needs the request's moment")
            zone = deadline_zone(params, request.fields)
            cut_off = params.recurring.next_after(_aware(request.moment), zone)
            if cut_off is None:
                raise DeadlineUnavailable("the recurring deadline has no next cut-off")
            return cut_off
        if params.evergreen_seconds is not None:
            start = request.first_open or request.moment
            if start is None:
                raise DeadlineUnavailable("an evergreen countdown needs first_open or moment")
            return _aware(start).astimezone(dt.UTC) + dt.timedelta(seconds=params.evergreen_seconds)
        assert params.deadline_field is not None
        deadline = _parse_deadline(request.fields.get(params.deadline_field))
        if deadline is None:
            raise DeadlineUnavailable(f"profile field {params.deadline_field!r} holds no deadline")
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=deadline_zone(params, request.fields))
        return deadline.astimezone(dt.UTC)
    except OverflowError:
        raise DeadlineUnavailable("the deadline is out of range") from None


def remaining_seconds(params: CountdownParams, request: RenderRequest) -> int:
    """Whole seconds from the request's moment to the deadline, never negative."""
    if request.moment is None:
        raise DeadlineUnavailable("a countdown needs the request's moment")
    left = (resolve_deadline(params, request) - _aware(request.moment)).total_seconds()
    return max(0, math.floor(left))


def unit_values(units: Sequence[Unit], seconds: int) -> tuple[int, ...]:
    """``seconds`` split over ``units``; the largest unit takes all that is above it."""
    values = []
    for unit in units:
        value, seconds = divmod(seconds, UNIT_SECONDS[unit])
        values.append(value)
    return tuple(values)


def _rgb(color: str) -> tuple[int, int, int]:
    """``#RRGGBB[AA]`` as RGB; GIF has no partial transparency, so alpha is dropped."""
    red, green, blue = ImageColor.getrgb(color)[:3]
    return red, green, blue


def _palette(background: str, digit: str, label: str) -> bytes:
    """The shared palette: background, then a ramp towards the digit, then the label colour."""
    base = _rgb(background)
    entries = [base]
    for color in (_rgb(digit), _rgb(label)):
        for level in range(1, RAMP_LEVELS + 1):
            entries.append(
                (
                    round(base[0] + (color[0] - base[0]) * level / RAMP_LEVELS),
                    round(base[1] + (color[1] - base[1]) * level / RAMP_LEVELS),
                    round(base[2] + (color[2] - base[2]) * level / RAMP_LEVELS),
                )
            )
    return b"".join(bytes(entry) for entry in entries)


@lru_cache(maxsize=2)
def _ramp_lut(ramp: int) -> tuple[int, ...]:
    """Mask coverage (0–255) to the palette index of that shade of the ramp starting at ``ramp``."""
    levels = ((coverage * RAMP_LEVELS + 127) // 255 for coverage in range(256))
    return tuple(ramp + level - 1 if level else BACKGROUND_INDEX for level in levels)


def _box(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
    """The pixel box of ``text`` relative to its baseline origin."""
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


@dataclass(frozen=True)
class _Text:
    """Text as palette indices on the background, with its box relative to the baseline."""

    image: Image.Image
    top: int
    """The image's top edge relative to the baseline."""


def _indexed_text(text: str, font: ImageFont.FreeTypeFont, ramp: int) -> _Text:
    """Draw ``text`` once as an anti-aliased mask and map its coverage to ramp indices."""
    left, top, right, bottom = _box(font, text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor="ls")
    return _Text(mask.point(list(_ramp_lut(ramp))), top)


@dataclass(frozen=True)
class DigitTiles:
    """The ten digits of one font as equal-sized tiles of palette indices (digit ramp)."""

    tiles: tuple[Image.Image, ...]
    width: int
    height: int
    top: int
    """The tiles' top edge relative to the baseline (negative: above it)."""


@lru_cache(maxsize=64)
def digit_tiles(family: str, weight: Weight, size: int) -> DigitTiles:
    """The digit tiles of one font size, each drawn once as an anti-aliased mask."""
    font = load_font(family, weight, size)
    digits = "0123456789"
    advances = [font.getlength(digit) for digit in digits]
    # Proportional digits (e.g. Inter's narrow 1) are centred in a cell of the widest advance.
    shifts = [round((max(advances) - advance) / 2) for advance in advances]
    boxes = [_box(font, digit) for digit in digits]
    left = min(0, *(shift + box[0] for shift, box in zip(shifts, boxes, strict=True)))
    right = max(
        math.ceil(max(advances)),
        *(shift + box[2] for shift, box in zip(shifts, boxes, strict=True)),
    )
    top = min(box[1] for box in boxes)
    bottom = max(0, *(box[3] for box in boxes))
    lut = list(_ramp_lut(DIGIT_RAMP))
    tiles = []
    for digit, shift in zip(digits, shifts, strict=True):
        mask = Image.new("L", (right - left, bottom - top))
        origin = (shift - left, -top)
        ImageDraw.Draw(mask).text(origin, digit, font=font, fill=255, anchor="ls")
        tiles.append(mask.point(lut))
    return DigitTiles(tuple(tiles), right - left, bottom - top, top)


@dataclass(frozen=True)
class _Layout:
    """Where the digits go at one pair of font sizes, and the static parts around them."""

    width: int
    height: int
    tiles: DigitTiles
    step: int
    """Distance between the left edges of neighbouring digits."""
    cell_x: tuple[int, ...]
    """Left edge of each unit's first digit, relative to the layout's left edge."""
    labels: tuple[tuple[_Text, int], ...]
    """Each label with its left edge (ink centred under its unit)."""
    separators: tuple[tuple[_Text, int], ...]
    """Each separator with its left edge."""
    label_baseline: int
    """The labels' baseline relative to the layout's top edge."""

    def positions(self, counts: Sequence[int], x: int, y: int) -> list[list[tuple[int, int]]]:
        """Top-left corner of every digit tile, per unit, for the layout placed at (x, y)."""
        return [
            [(x + cell + k * self.step, y) for k in range(count)]
            for cell, count in zip(self.cell_x, counts, strict=True)
        ]

    def draw_base(self, size: tuple[int, int], x: int, y: int) -> Image.Image:
        """Background, labels and separators as palette indices, the layout placed at (x, y)."""
        base = Image.new("L", size, BACKGROUND_INDEX)
        digit_baseline = y - self.tiles.top
        for text, left in self.separators:
            base.paste(text.image, (x + left, digit_baseline + text.top))
        for text, left in self.labels:
            base.paste(text.image, (x + left, y + self.label_baseline + text.top))
        return base


def _digit_counts(units: Sequence[Unit], first_values: Sequence[int]) -> list[int]:
    """Digits per unit: the leading unit as many as frame 1 needs, the others their range."""
    counts = [max(2, len(str(first_values[0])))]
    for above, unit in itertools.pairwise(units):
        counts.append(max(2, len(str(UNIT_SECONDS[above] // UNIT_SECONDS[unit] - 1))))
    return counts


def _layout(
    params: CountdownParams, counts: Sequence[int], digit_size: int, label_size: int
) -> _Layout:
    """Digits, separators and labels side by side, each unit centred over its label."""
    tiles = digit_tiles(params.family, params.weight, digit_size)
    digit_font = load_font(params.family, params.weight, digit_size)
    label_font = load_font(params.family, params.label_weight, label_size)
    names = [params.label(unit) for unit in params.units]
    labels = [_indexed_text(name, label_font, LABEL_RAMP) if name else None for name in names]
    separator = (
        _indexed_text(params.separator, digit_font, DIGIT_RAMP) if params.separator else None
    )
    step = tiles.width + max(1, round(digit_size * 0.04))
    spacer = round(digit_size * (0.12 if separator else 0.35))
    separator_width = (separator.image.width if separator else 0) + 2 * spacer
    label_pad = round(label_size * 0.5)
    digit_widths = [count * step - (step - tiles.width) for count in counts]
    cell_widths = [
        max(digits, label.image.width + label_pad if label else 0)
        for digits, label in zip(digit_widths, labels, strict=True)
    ]
    ascent, descent = label_font.getmetrics()
    has_labels = any(labels)
    label_baseline = tiles.height + round(label_size * 0.4) + ascent
    height = label_baseline + descent if has_labels else tiles.height
    cell_x: list[int] = []
    placed_labels: list[tuple[_Text, int]] = []
    placed_separators: list[tuple[_Text, int]] = []
    x = 0
    for index, (cell_width, digit_width, label) in enumerate(
        zip(cell_widths, digit_widths, labels, strict=True)
    ):
        cell_x.append(x + (cell_width - digit_width) // 2)
        if label:
            placed_labels.append((label, x + (cell_width - label.image.width) // 2))
        x += cell_width
        if index < len(cell_widths) - 1:
            if separator:
                placed_separators.append((separator, x + spacer))
            x += separator_width
    return _Layout(
        x,
        height,
        tiles,
        step,
        tuple(cell_x),
        tuple(placed_labels),
        tuple(placed_separators),
        label_baseline,
    )


def _fitted_layout(
    params: CountdownParams, request: RenderRequest, counts: Sequence[int]
) -> _Layout:
    """The layout at the configured sizes, shrunk until it fits inside the padding."""
    scale = request.scale
    room_width = max(1, request.width - 2 * params.padding * scale)
    room_height = max(1, request.height - 2 * params.padding * scale)
    digit_size = params.digit_font_size * scale
    label_size = params.label_font_size * scale
    while True:
        layout = _layout(params, counts, digit_size, label_size)
        factor = min(room_width / layout.width, room_height / layout.height)
        if factor >= 1 or digit_size <= MIN_FONT_SIZE:
            return layout
        digit_size = max(MIN_FONT_SIZE, min(digit_size - 1, math.floor(digit_size * factor)))
        label_size = max(MIN_FONT_SIZE, min(label_size, math.floor(label_size * factor)))


@dataclass(frozen=True)
class _Frame:
    """One GIF frame: the changed box of the canvas, where it goes, and how long it shows."""

    image: Image.Image
    """Indices into the GIF's global palette, or into ``palette`` when the frame has one."""
    offset: tuple[int, int]
    duration: int
    palette: bytes | None = None
    """A local colour table, for a frame in other colours than the rest (the expired state)."""


def _countdown_frames(
    params: CountdownParams, request: RenderRequest, first: int, count: int
) -> list[_Frame]:
    """Frame i shows ``first - i`` seconds (never below zero); unchanged seconds extend a frame."""
    values = unit_values(params.units, first)
    counts = _digit_counts(params.units, values)
    layout = _fitted_layout(params, request, counts)
    x = (request.width - layout.width) // 2
    y = (request.height - layout.height) // 2
    canvas = layout.draw_base((request.width, request.height), x, y)
    positions = [p for cell in layout.positions(counts, x, y) for p in cell]
    tiles = layout.tiles.tiles
    shown = _digits(values, counts)
    for (left, top), digit in zip(positions, shown, strict=True):
        canvas.paste(tiles[digit], (left, top))
    frames = [_Frame(canvas.copy(), (0, 0), FRAME_MILLISECONDS)]
    tile_width, tile_height = layout.tiles.width, layout.tiles.height
    for index in range(1, count):
        digits = _digits(unit_values(params.units, max(0, first - index)), counts)
        changed = [i for i, (old, new) in enumerate(zip(shown, digits, strict=True)) if old != new]
        for i in changed:
            canvas.paste(tiles[digits[i]], positions[i])
        shown = digits
        # The box around the changed tiles, clipped to the image (a too small one may hide it).
        left = max(0, min((positions[i][0] for i in changed), default=0))
        right = min(request.width, max((positions[i][0] for i in changed), default=0) + tile_width)
        top, bottom = max(0, y), min(request.height, y + tile_height)
        if changed and left < right and top < bottom:
            box = (left, top, right, bottom)
            frames.append(_Frame(canvas.crop(box), (left, top), FRAME_MILLISECONDS))
        else:
            frames[-1] = replace(frames[-1], duration=frames[-1].duration + FRAME_MILLISECONDS)
    return frames


def _digits(values: Sequence[int], counts: Sequence[int]) -> tuple[int, ...]:
    """Every digit shown, left to right, each value zero-padded to its cell's width."""
    return tuple(
        int(digit)
        for value, count in zip(values, counts, strict=True)
        for digit in f"{value:0{count}d}"[-count:]
    )


def _message_canvas(text: str, params: CountdownParams, request: RenderRequest) -> Image.Image:
    """A message (expired or static text) centred, wrapped within the padding and shrunk to fit,
    as palette indices (digit ramp)."""
    padding = params.padding * request.scale
    fitted = fit(
        text,
        family=params.family,
        weight=params.message_weight,
        size=params.message_font_size * request.scale,
        max_width=max(1, request.width - 2 * padding),
        max_height=max(1, request.height - 2 * padding),
        max_lines=params.message_max_lines,
        line_spacing=1.2,
    )
    canvas = Image.new("L", (request.width, request.height), BACKGROUND_INDEX)
    ascent = fitted.font.getmetrics()[0]
    baseline = (request.height - len(fitted.lines) * fitted.line_height) // 2 + ascent
    for line in fitted.lines:
        text_image = _indexed_text(line, fitted.font, DIGIT_RAMP)
        x = (request.width - text_image.image.width) // 2
        canvas.paste(text_image.image, (x, baseline + text_image.top))
        baseline += fitted.line_height
    return canvas


def _coverage_lut(ramp: int) -> tuple[int, ...]:
    """Palette index to the coverage (0–255) of the text drawn in the ramp starting at ``ramp``;
    every other index is uncovered."""
    return tuple(
        round((index - ramp + 1) * 255 / RAMP_LEVELS) if ramp <= index < ramp + RAMP_LEVELS else 0
        for index in range(256)
    )


COVERAGE_LUT = _coverage_lut(DIGIT_RAMP)
"""Digit-ramp palette index to the text's coverage (0–255); every other index is uncovered."""
LABEL_COVERAGE_LUT = _coverage_lut(LABEL_RAMP)
"""Label-ramp palette index to the label's coverage (0–255)."""


@dataclass(frozen=True)
class _Asset:
    """A decoded asset, equal to another by id alone: ids are content hashes."""

    id: str
    image: Image.Image = field(compare=False)


@lru_cache(maxsize=16)
def _fitted_picture(
    asset: _Asset, size: tuple[int, int], fit_mode: ImageFit, background: str
) -> Image.Image:
    """An RGB canvas of ``size``: the asset filling it, cropped (cover), or whole and centred on
    ``background`` (contain); transparent parts show ``background``.

    Cached per asset id, size, mode and colour, so a picture shown to many recipients is
    resampled once; treat the result as read-only.
    """
    source = asset.image.convert("RGBA")
    width, height = size
    ratio_x, ratio_y = width / source.width, height / source.height
    if fit_mode == "cover":
        ratio = max(ratio_x, ratio_y)
        crop_width, crop_height = width / ratio, height / ratio
        left, top = (source.width - crop_width) / 2, (source.height - crop_height) / 2
        region = (left, top, left + crop_width, top + crop_height)
        placed = source.resize(size, Image.Resampling.LANCZOS, box=region, reducing_gap=3.0)
    else:
        ratio = min(ratio_x, ratio_y)
        fitted = (max(1, round(source.width * ratio)), max(1, round(source.height * ratio)))
        placed = source.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("RGB", size, _rgb(background))
    canvas.paste(placed, ((width - placed.width) // 2, (height - placed.height) // 2), placed)
    return canvas


def _asset(request: RenderRequest, asset_id: str | None) -> _Asset | None:
    """The supplied asset ``asset_id``, or None when none is configured or it is unusable."""
    if asset_id is None:
        return None
    source = request.assets.get(asset_id)
    if not isinstance(source, Image.Image) or source.width < 1 or source.height < 1:
        return None
    return _Asset(asset_id, source)


def _picture(
    request: RenderRequest, asset_id: str | None, fit_mode: ImageFit, background: str
) -> Image.Image | None:
    """The uploaded image ``asset_id`` fitted to the block (read-only), or None when none is
    configured or the server did not supply a usable one."""
    asset = _asset(request, asset_id)
    if asset is None:
        return None
    try:
        return _fitted_picture(asset, (request.width, request.height), fit_mode, background)
    except (OSError, ValueError):  # a mode Pillow cannot convert, or truncated image data
        return None


@dataclass(frozen=True)
class _Backdrop:
    """The background image fitted to the block, and a palette for frames drawn over it."""

    picture: Image.Image
    palette: Image.Image
    """A 1×1 ``P`` image carrying the palette (Pillow maps other images to it)."""


@lru_cache(maxsize=16)
def _backdrop(
    asset: _Asset,
    size: tuple[int, int],
    fit_mode: ImageFit,
    background: str,
    digit: str,
    label: str,
) -> _Backdrop:
    """The fitted picture with a palette made for it: a median cut of the picture (at half
    size) and of its blends a quarter, half and three quarters of the way to the digit colour
    and half way to the label colour (the anti-aliased edges), plus the two colours themselves.

    Cached like the picture, so the median cut runs once per image, size and colours; treat
    the result as read-only.
    """
    picture = _fitted_picture(asset, size, fit_mode, background)
    sample = picture.reduce(2) if min(picture.size) >= 4 else picture
    blends = [(digit, 0.25), (digit, 0.5), (digit, 0.75), (label, 0.5)]
    stacked = Image.new("RGB", (sample.width, sample.height * (1 + len(blends))))
    stacked.paste(sample, (0, 0))
    for row, (color, share) in enumerate(blends, start=1):
        blended = Image.blend(sample, Image.new("RGB", sample.size, _rgb(color)), share)
        stacked.paste(blended, (0, row * sample.height))
    own = stacked.quantize(254, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    carrier = Image.new("P", (1, 1))
    inks = bytes(_rgb(digit)) + bytes(_rgb(label))
    carrier.putpalette(bytes(own.getpalette() or []) + inks)
    return _Backdrop(picture, carrier)


def _background_backdrop(params: CountdownParams, request: RenderRequest) -> _Backdrop | None:
    """The background image and its palette, if configured and supplied."""
    asset = _asset(request, params.background_image)
    if asset is None:
        return None
    size = (request.width, request.height)
    try:
        return _backdrop(
            asset,
            size,
            params.background_fit,
            params.background,
            params.digit_color,
            params.label_color,
        )
    except (OSError, ValueError):  # a mode Pillow cannot convert, or truncated image data
        return None


def _with_palette(canvas: Image.Image, palette: bytes) -> Image.Image:
    """A palette image of the index canvas."""
    image = canvas.copy()
    image.putpalette(palette)
    return image


@dataclass(frozen=True)
class _Still:
    """A still state (a message, or an image): palette indices with their palette, or full-colour
    RGB (``palette`` None) when drawn over an uploaded image."""

    image: Image.Image
    palette: bytes | None

    def shown(self) -> Image.Image:
        """The image as a viewer sees it."""
        return self.image if self.palette is None else _with_palette(self.image, self.palette)

    def frame(self, duration: int, global_palette: bytes) -> _Frame:
        """The still as the last frame of an animation: with a local colour table unless it
        uses the animation's palette (RGB is quantised to 256 colours for it)."""
        if self.palette is None:
            quantised = self.image.quantize(256)
            palette = bytes(quantised.getpalette() or [])
            return _Frame(quantised, (0, 0), duration, palette)
        local = None if self.palette == global_palette else self.palette
        return _Frame(self.image, (0, 0), duration, local)


def _message_still(
    params: CountdownParams,
    request: RenderRequest,
    text: str,
    backdrops: Sequence[tuple[str | None, ImageFit]],
    background: str,
) -> _Still | None:
    """``text`` over the first usable backdrop image, else on ``background`` (None: no text
    and no image)."""
    color = params.message_color or params.digit_color
    for asset_id, fit_mode in backdrops:
        picture = _picture(request, asset_id, fit_mode, background)
        if picture is not None:
            picture = picture.copy()
            if text:
                coverage = _message_canvas(text, params, request).point(list(COVERAGE_LUT))
                picture.paste(_rgb(color), (0, 0, *picture.size), coverage)
            return _Still(picture, None)
    if not text:
        return None
    palette = _palette(background, color, params.label_color)
    return _Still(_message_canvas(text, params, request), palette)


def _expired_still(params: CountdownParams, request: RenderRequest) -> _Still | None:
    """The expired state: the expired text over the expired image, else over the background
    image, else on the expired background; None (zeros) without text or image."""
    backdrops = [
        (params.expired_image, params.expired_image_fit),
        (params.background_image, params.background_fit),
    ]
    background = params.expired_background or params.background
    return _message_still(params, request, params.expired_text, backdrops, background)


def static_text(params: CountdownParams, request: RenderRequest) -> str:
    """The static text with its placeholders filled from the deadline in ``deadline_zone``."""
    deadline = resolve_deadline(params, request).astimezone(deadline_zone(params, request.fields))
    template = params.static_text or STATIC_TEXTS[params.language]
    locale = params.language
    return template.format(
        weekday=format_date(deadline, "EEEE", locale=locale),
        day=str(deadline.day),
        month=format_date(deadline, "MMMM", locale=locale),
        year=str(deadline.year),
        time=f"{deadline:%H:%M}",
        date=format_date(deadline, "medium", locale=locale),
    )


def _static_still(params: CountdownParams, request: RenderRequest) -> _Still:
    """The static text over the background image, else on the background colour."""
    backdrops = [(params.background_image, params.background_fit)]
    text = static_text(params, request)
    still = _message_still(params, request, text, backdrops, params.background)
    return still or _Still(Image.new("L", (request.width, request.height)), _palette_of(params))


def _still(params: CountdownParams, request: RenderRequest, first: int) -> _Still | None:
    """The still state for ``first`` seconds left (expired or static), or None: the timer."""
    if first == 0:
        return _expired_still(params, request)
    if params.display == STATIC:
        return _static_still(params, request)
    return None


def _palette_of(params: CountdownParams) -> bytes:
    """The running timer's palette: background, digit ramp, label ramp."""
    return _palette(params.background, params.digit_color, params.label_color)


@lru_cache(maxsize=16)
def _ink(digit: str, label: str) -> bytes:
    """An RGBA palette of the index space: each ramp index is its colour with the ramp's
    coverage as alpha; the background index is transparent."""
    digit_rgb, label_rgb = _rgb(digit), _rgb(label)
    entries = []
    for index in range(256):
        if DIGIT_RAMP <= index < LABEL_RAMP:
            entries.append((*digit_rgb, COVERAGE_LUT[index]))
        elif LABEL_RAMP <= index < LABEL_RAMP + RAMP_LEVELS:
            entries.append((*label_rgb, LABEL_COVERAGE_LUT[index]))
        else:
            entries.append((0, 0, 0, 0))
    return b"".join(bytes(entry) for entry in entries)


def _over_picture(frame: _Frame, picture: Image.Image, ink: bytes) -> Image.Image:
    """The frame's box of ``picture`` with the frame's digits and labels drawn over it, as RGB;
    ``ink`` is the RGBA palette of :func:`_ink`."""
    left, top = frame.offset
    width, height = frame.image.size
    image = picture.crop((left, top, left + width, top + height))
    inked = frame.image.copy()
    inked.putpalette(ink, "RGBA")
    overlay = inked.convert("RGBA")
    image.paste(overlay, (0, 0), overlay)
    return image


def _timer(
    params: CountdownParams, request: RenderRequest, first: int, count: int
) -> tuple[bytes, list[_Frame]]:
    """The palette and ``count`` seconds of frames from ``first`` seconds left; when the deadline
    passes within them, the last frame is the expired state (if it has text or an image).

    Over a background image, each frame (frame 1 whole, then the changed boxes) is drawn over
    the picture in RGB and mapped to the picture's palette.
    """
    ending = _expired_still(params, request) if 0 < first < count else None
    frames = _countdown_frames(params, request, first, first if ending else count)
    palette = _palette_of(params)
    backdrop = _background_backdrop(params, request)
    if backdrop is not None:
        ink = _ink(params.digit_color, params.label_color)
        palette = bytes(backdrop.palette.getpalette() or [])
        mapped = Image.Dither.NONE
        frames = [
            replace(
                frame,
                image=_over_picture(frame, backdrop.picture, ink).quantize(
                    palette=backdrop.palette, dither=mapped
                ),
            )
            for frame in frames
        ]
    if ending is not None:
        frames.append(ending.frame((count - first) * FRAME_MILLISECONDS, palette))
    return palette, frames


def _gif(
    frames: Sequence[_Frame], size: tuple[int, int], palette: bytes, loop: int | None
) -> bytes:
    """An animated GIF with one global palette; each frame stores only its changed box."""
    entries = len(palette) // 3
    bits = max(1, (entries - 1).bit_length())
    table = palette + bytes(3 * ((1 << bits) - entries))
    packed = 0x80 | (bits - 1) << 4 | (bits - 1)
    out = [b"GIF89a", struct.pack("<HHBBB", *size, packed, BACKGROUND_INDEX, 0), table]
    if loop not in (None, 1) and len(frames) > 1:  # no loop extension: clients play it once
        repeats = 0 if loop == 0 else loop - 1
        out.append(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", repeats) + b"\x00")
    for frame in frames:
        duration = frame.duration if len(frames) > 1 else 0
        image = frame.image
        if frame.palette is not None:
            image = _with_palette(image, frame.palette)
        local = frame.palette is not None
        out.extend(
            GifImagePlugin.getdata(
                image, frame.offset, duration=duration, include_color_table=local
            )
        )
    out.append(b";")
    return b"".join(out)


class CountdownRenderer(Renderer[CountdownParams]):
    """Counts down to a per-request deadline as an animated GIF, one frame per second."""

    type = "countdown"
    params_model = CountdownParams
    animated = True

    def moment(self, params: CountdownParams, now: dt.datetime) -> dt.datetime:
        """``now`` truncated to the second: the output changes once a second."""
        return _aware(now).replace(microsecond=0)

    def assets_used(self, params: CountdownParams) -> frozenset[str]:
        """The background and expired images, if any.

        Named even while the countdown runs: the server asks before the deadline is resolved.
        """
        return frozenset(
            asset for asset in (params.background_image, params.expired_image) if asset
        )

    def fields_used(self, params: CountdownParams) -> frozenset[str]:
        used = {params.deadline_field} if params.deadline_field else set()
        if params.time_zone == RECIPIENT_ZONE and params.uses_zone():
            used.add(TIME_ZONE_FIELD)
        return frozenset(used)

    def cache_material(self, params: CountdownParams, request: RenderRequest) -> list[Any]:
        """The resolved deadline instead of the profile, so recipients share the render.

        Once the deadline has passed the output no longer changes, so the second is replaced by
        ``EXPIRED``: an expired countdown is rendered and cached once, not once a second. A
        static text depends on the deadline and its zone, not on the second.
        """
        moment = None
        if request.moment is not None:
            moment = _aware(request.moment).astimezone(dt.UTC).isoformat()
            if remaining_seconds(params, request) == 0:
                moment = EXPIRED
            elif params.display == STATIC:
                moment = STATIC
        material = [
            request.width,
            request.height,
            request.scale,
            resolve_deadline(params, request).isoformat(),
            moment,
            choose_format(params.output, request.accepts_webp, self.animated),
        ]
        if moment == STATIC:
            material.append(deadline_zone(params, request.fields).key)
        return material

    def render(self, params: CountdownParams, request: RenderRequest) -> Image.Image:
        """The first frame as a still image: palette indices, or RGB over an uploaded image."""
        first = remaining_seconds(params, request)
        still = _still(params, request, first)
        if still is not None:
            return still.shown()
        frame = _countdown_frames(params, request, first, 1)[0]
        backdrop = _background_backdrop(params, request)
        if backdrop is not None:
            ink = _ink(params.digit_color, params.label_color)
            return _over_picture(frame, backdrop.picture, ink)
        return _with_palette(frame.image, _palette_of(params))

    def render_encoded(self, params: CountdownParams, request: RenderRequest) -> RenderedImage:
        """An animated GIF, or the first frame when another format is asked for.

        A countdown that reaches its deadline within its frames plays once and stays on the
        expired state (or zeros) rather than jumping back in time.
        """
        fmt = choose_format(params.output, request.accepts_webp, self.animated)
        if fmt != "gif":
            return encode_image(self.render(params, request), fmt, drawn=self.drawn(params))
        size = (request.width, request.height)
        first = remaining_seconds(params, request)
        still = _still(params, request, first)
        if still is not None and still.palette is None:  # full colour, quantised for GIF
            return encode_image(still.image, fmt, drawn=self.drawn(params))
        if still is not None and still.palette is not None:
            body = _gif([_Frame(still.image, (0, 0), 0)], size, still.palette, None)
            return RenderedImage(body, MEDIA_TYPES["gif"])
        palette, frames = _timer(params, request, first, params.frames if first else 1)
        loop = params.loop if first >= params.frames else None
        return RenderedImage(_gif(frames, size, palette, loop), MEDIA_TYPES["gif"])


RENDERER = CountdownRenderer()
