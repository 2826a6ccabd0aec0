"""Countdown timer: an animated GIF that counts down to a deadline, one frame per second.

The deadline is absolute, read from a profile field, or evergreen (a fixed time after the
recipient's first open); :func:`resolve_deadline` is a pure function of (params, request), and
the cache key holds the resolved deadline instead of the profile, so every recipient with the
same deadline shares one cached GIF per second.

Drawing works in palette-index space: an ``L`` image whose values are indices into one shared
palette (background, then an anti-aliasing ramp from the background to the digit colour, then
one to the label colour). Text is drawn once as an anti-aliased mask and mapped to ramp indices
by a lookup table; digit tiles are cached per font size, so a frame is the previous one with the
changed digit tiles pasted in, and only the box around them is encoded.

Once the deadline has passed the output is one still frame that no longer depends on the moment
(so it is cached once, not per second): the expired text on its background, or an uploaded image
(``expired_image``, supplied decoded in ``request.assets``) with the text drawn over it in full
colour. A missing or unusable image falls back to the text state.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

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
from renderers.fonts import DEFAULT_FAMILY, FONT_FILES, Weight, load_font
from renderers.text_layout import fit
from renderers.time_zones import time_zone

Unit = Literal["days", "hours", "minutes", "seconds"]
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
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class DeadlineUnavailable(ContentUnavailable, ValueError):
    """The request lacks what the deadline needs (a profile field, a moment); serve the fallback."""


class CountdownParams(RendererParams):
    """Parameters of a countdown timer; exactly one of the three deadline modes is given."""

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
    time_zone: str = Field(
        "UTC",
        description='IANA zone for naive profile deadlines, or "recipient" (profile time_zone).',
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
    loop: int = Field(0, ge=0, le=65535, description="0 plays forever, n plays n times.")
    expired_text: str = Field(
        "", max_length=200, description="Shown once the deadline has passed; empty: zeros."
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

    @model_validator(mode="after")
    def _one_deadline_mode(self) -> CountdownParams:
        given = [
            name
            for name in ("deadline", "deadline_field", "evergreen_seconds")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(
                f"give exactly one of deadline, deadline_field or evergreen_seconds ({found})"
            )
        return self

    def label(self, unit: Unit) -> str:
        """The label shown under ``unit``."""
        return self.labels.get(unit, LABELS[self.language][unit])


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


def _naive_zone(params: CountdownParams, fields: Mapping[str, Any]) -> ZoneInfo:
    """The zone of naive profile deadlines: the configured one or the recipient's."""
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
    countdown has neither first open nor moment.
    """
    try:
        if params.deadline is not None:
            return params.deadline.astimezone(dt.UTC)
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
            deadline = deadline.replace(tzinfo=_naive_zone(params, request.fields))
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
    offset: tuple[int, int]
    duration: int


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


def _expired_canvas(params: CountdownParams, request: RenderRequest) -> Image.Image:
    """The expired text, centred and shrunk to fit, as palette indices (digit ramp)."""
    padding = params.padding * request.scale
    fitted = fit(
        params.expired_text,
        family=params.family,
        weight=params.weight,
        size=params.digit_font_size * request.scale,
        max_width=max(1, request.width - 2 * padding),
        max_height=max(1, request.height - 2 * padding),
        max_lines=3,
        line_spacing=1.2,
    )
    canvas = Image.new("L", (request.width, request.height), BACKGROUND_INDEX)
    ascent = fitted.font.getmetrics()[0]
    baseline = (request.height - len(fitted.lines) * fitted.line_height) // 2 + ascent
    for line in fitted.lines:
        text = _indexed_text(line, fitted.font, DIGIT_RAMP)
        x = (request.width - text.image.width) // 2
        canvas.paste(text.image, (x, baseline + text.top))
        baseline += fitted.line_height
    return canvas


COVERAGE_LUT = tuple(
    round(index * 255 / RAMP_LEVELS) if DIGIT_RAMP <= index < LABEL_RAMP else 0
    for index in range(256)
)
"""Digit-ramp palette index to the text's coverage (0–255); every other index is uncovered."""


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

    Cached per asset id, size, mode and colour, so an expired image shown to many recipients is
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


def _expired_picture(params: CountdownParams, request: RenderRequest) -> Image.Image | None:
    """The expired image filling the block with the expired text over it, as RGB.

    None when no image is configured or the server did not supply a usable one: the caller
    then draws the text state instead.
    """
    if params.expired_image is None:
        return None
    source = request.assets.get(params.expired_image)
    if not isinstance(source, Image.Image) or source.width < 1 or source.height < 1:
        return None
    size = (request.width, request.height)
    background = params.expired_background or params.background
    try:
        asset = _Asset(params.expired_image, source)
        picture = _fitted_picture(asset, size, params.expired_image_fit, background).copy()
    except (OSError, ValueError):  # a mode Pillow cannot convert, or truncated image data
        return None
    if params.expired_text:
        coverage = _expired_canvas(params, request).point(list(COVERAGE_LUT))
        picture.paste(_rgb(params.digit_color), (0, 0, *size), coverage)
    return picture


def _with_palette(canvas: Image.Image, palette: bytes) -> Image.Image:
    """A palette image of the index canvas."""
    image = canvas.copy()
    image.putpalette(palette)
    return image


def _gif(frames: Sequence[_Frame], size: tuple[int, int], palette: bytes, loop: int) -> bytes:
    """An animated GIF with one global palette; each frame stores only its changed box."""
    entries = len(palette) // 3
    bits = max(1, (entries - 1).bit_length())
    table = palette + bytes(3 * ((1 << bits) - entries))
    packed = 0x80 | (bits - 1) << 4 | (bits - 1)
    out = [b"GIF89a", struct.pack("<HHBBB", *size, packed, BACKGROUND_INDEX, 0), table]
    if loop != 1 and len(frames) > 1:  # no loop extension: browsers play the frames once
        repeats = 0 if loop == 0 else loop - 1
        out.append(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", repeats) + b"\x00")
    for frame in frames:
        duration = frame.duration if len(frames) > 1 else 0
        out.extend(GifImagePlugin.getdata(frame.image, frame.offset, duration=duration))
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
        """The expired image, if any.

        Named even while the countdown runs: the server asks before the deadline is resolved.
        """
        return frozenset({params.expired_image}) if params.expired_image else frozenset()

    def fields_used(self, params: CountdownParams) -> frozenset[str]:
        if params.deadline_field is None:
            return frozenset()
        if params.time_zone == RECIPIENT_ZONE:
            return frozenset({params.deadline_field, TIME_ZONE_FIELD})
        return frozenset({params.deadline_field})

    def cache_material(self, params: CountdownParams, request: RenderRequest) -> list[Any]:
        """The resolved deadline instead of the profile, so recipients share the render.

        Once the deadline has passed the output no longer changes, so the second is replaced by
        ``EXPIRED``: an expired countdown is rendered and cached once, not once a second.
        """
        moment = None
        if request.moment is not None:
            moment = _aware(request.moment).astimezone(dt.UTC).isoformat()
            if remaining_seconds(params, request) == 0:
                moment = EXPIRED
        return [
            request.width,
            request.height,
            request.scale,
            resolve_deadline(params, request).isoformat(),
            moment,
            choose_format(params.output, request.accepts_webp, self.animated),
        ]

    def render(self, params: CountdownParams, request: RenderRequest) -> Image.Image:
        """The first frame as a still image: palette indices, or RGB for the expired image."""
        first = remaining_seconds(params, request)
        picture = _expired_picture(params, request) if first == 0 else None
        if picture is not None:
            return picture
        palette, frames = _frames(params, request, first, 1)
        return _with_palette(frames[0].image, palette)

    def render_encoded(self, params: CountdownParams, request: RenderRequest) -> RenderedImage:
        """An animated GIF, or the first frame when another format is asked for.

        A countdown that reaches zero within its frames plays once and stays on zero rather than
        jumping back in time.
        """
        fmt = choose_format(params.output, request.accepts_webp, self.animated)
        first = remaining_seconds(params, request)
        picture = _expired_picture(params, request) if first == 0 else None
        if picture is not None:  # one still frame, quantised to 256 colours for GIF
            return encode_image(picture, fmt, drawn=self.drawn(params))
        if fmt != "gif":
            return encode_image(self.render(params, request), fmt, drawn=self.drawn(params))
        palette, frames = _frames(params, request, first, params.frames)
        loop = params.loop if first >= params.frames else 1
        body = _gif(frames, (request.width, request.height), palette, loop)
        return RenderedImage(body, MEDIA_TYPES["gif"])


def _frames(
    params: CountdownParams, request: RenderRequest, first: int, count: int
) -> tuple[bytes, list[_Frame]]:
    """The palette and frames for ``first`` seconds left: expired text, zeros or a countdown.

    The expired image is not drawn here (it is full colour); without it this is the fallback.
    """
    if first == 0 and params.expired_text:
        background = params.expired_background or params.background
        palette = _palette(background, params.digit_color, params.label_color)
        return palette, [_Frame(_expired_canvas(params, request), (0, 0), 0)]
    palette = _palette(params.background, params.digit_color, params.label_color)
    return palette, _countdown_frames(params, request, first, count if first else 1)


RENDERER = CountdownRenderer()
