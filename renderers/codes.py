"""QR codes and barcodes (Code 128, EAN-13, UPC-A) for loyalty cards, tickets and coupons.

The value is a template over the profile (or a newsletter item's) fields, such as
``{{ loyalty_id }}``. segno builds the QR module matrix and python-barcode the bar patterns of
the 1D codes; this module draws them with a whole number of pixels per module and no
anti-aliasing, centred in the block with the symbology's quiet zone, so a code scans at 1× and
at 2× alike. EAN-13 and UPC-A values are digits, without their check digit (computed) or with it
(verified). A value that cannot be encoded, or a block too small for the code, makes the
content unavailable: the open serves the block's fallback rather than a code that cannot scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import segno
from barcode import get_barcode_class
from barcode.errors import BarcodeError
from PIL import Image, ImageColor, ImageDraw, ImageFont
from pydantic import Field, model_validator

from renderers.base import (
    ContentUnavailable,
    OutputFormat,
    Renderer,
    RendererParams,
    RenderRequest,
)
from renderers.card import FontFamily, TemplateText
from renderers.colors import Color
from renderers.fonts import DEFAULT_FAMILY, Weight, load_font
from renderers.templating import compile_template, placeholders
from renderers.text_layout import MIN_FONT_SIZE

Symbology = Literal["qr", "code128", "ean13", "upca"]
ErrorCorrection = Literal["L", "M", "Q", "H"]

QUIET_ZONES: dict[str, int] = {"qr": 4, "code128": 10, "ean13": 11, "upca": 9}
"""The least quiet zone (light margin) each symbology's specification asks for, in modules."""
NAMES = {"qr": "a QR code", "code128": "Code 128", "ean13": "EAN-13", "upca": "UPC-A"}
GS1_LENGTHS = {"ean13": 13, "upca": 12}
"""Digits of a GS1 code with its check digit (the last one)."""
MAX_VALUE_LENGTH = 2000
"""Characters of a filled value beyond which no code is drawn (no block is wide enough)."""
MIN_BAR_HEIGHT = 10
"""Pixels (times the scale) of bar that a 1D code needs, without its text, to be drawn."""
MIN_CONTRAST = 3.0
"""The least contrast ratio (WCAG's) between the dark modules and the light ones."""
TEXT_GAP = 4
"""Pixels (times the scale) between a 1D code's bars and its text."""


class UnencodableValue(ValueError):
    """A value that the symbology cannot encode; the message says why (without the value)."""


@dataclass(frozen=True)
class Symbol:
    """An encoded value: rows of modules (1 dark, 0 light; a 1D code has one row) and the text
    a person reads under a 1D code (an EAN-13 or UPC-A with its check digit)."""

    rows: tuple[bytes, ...]
    text: str

    @property
    def columns(self) -> int:
        """Modules across."""
        return len(self.rows[0])


def gs1_check_digit(data: str) -> str:
    """The GS1 (EAN/UPC) check digit of ``data``: weights 3 and 1 from the right."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(data)))
    return str((10 - total % 10) % 10)


def _gs1_value(symbology: str, value: str) -> str:
    """The full code (with its check digit) of an EAN-13 or UPC-A value."""
    name, length = NAMES[symbology], GS1_LENGTHS[symbology]
    if not (value.isascii() and value.isdigit()):
        raise UnencodableValue(f"{name} takes digits only")
    if len(value) not in (length - 1, length):
        raise UnencodableValue(
            f"{name} takes {length - 1} digits (the check digit is added) or {length} (the "
            f"last is the check digit), not {len(value)}"
        )
    check = gs1_check_digit(value[: length - 1])
    if len(value) == length and value[-1] != check:
        raise UnencodableValue(
            f"the {name} check digit of {value[: length - 1]} is {check}, not {value[-1]}"
        )
    return value[: length - 1] + check


@lru_cache(maxsize=1024)
def encode(symbology: Symbology, value: str, error_correction: ErrorCorrection = "M") -> Symbol:
    """``value`` as modules of ``symbology``; UnencodableValue says why it cannot be."""
    if not value:
        raise UnencodableValue(f"{NAMES[symbology]} needs a value, and it is empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise UnencodableValue(f"the value is longer than {MAX_VALUE_LENGTH} characters")
    if symbology == "qr":
        try:
            qr = segno.make_qr(value, error=error_correction.lower())
        except segno.DataOverflowError as exc:
            raise UnencodableValue(
                f"the value is too long for a QR code at error correction {error_correction}"
            ) from exc
        return Symbol(tuple(bytes(row) for row in qr.matrix), "")
    if symbology == "code128":
        if not value.isascii():
            raise UnencodableValue("Code 128 takes ASCII characters only")
        full = value
    else:
        full = _gs1_value(symbology, value)
    # python-barcode adds the check digit itself, so an EAN-13 or UPC-A goes in without it.
    data = full if symbology == "code128" else full[:-1]
    try:
        coder = get_barcode_class(symbology)(data)
        pattern: str = coder.build()[0]
    except (BarcodeError, ValueError, IndexError) as exc:
        raise UnencodableValue(f"{NAMES[symbology]} cannot encode the value") from exc
    if coder.get_fullcode() != full:  # the same check digit, worked out twice
        raise UnencodableValue(f"{NAMES[symbology]} encoded another value")
    shown = "".join(c if c.isprintable() else " " for c in full)
    return Symbol((bytes(1 if bar == "1" else 0 for bar in pattern),), shown)


def fill_value(source: str, fields: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    """The template filled as is (no typography, no cut), trimmed; missing or empty fields take
    their default. Unlike a text, a code's value is not shortened or reflowed: that would
    encode another value."""
    context: dict[str, Any] = dict(defaults)
    context.update({k: v for k, v in fields.items() if v is not None and v != ""})
    return compile_template(source).render(context).strip()


def _opaque(color: str) -> tuple[int, int, int]:
    red, green, blue = ImageColor.getrgb(color)[:3]
    return red, green, blue


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG's relative luminance."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


class CodeParams(RendererParams):
    """Parameters of a QR code or barcode."""

    type: Literal["code"] = "code"
    output: OutputFormat = Field(
        "png",
        description="PNG by default: lossy formats (JPEG, and WebP which auto may choose) blur "
        "the modules' edges.",
    )
    symbology: Symbology = Field("qr", description="qr, code128, ean13 (EAN-13) or upca (UPC-A).")
    value: TemplateText = Field(
        description="What the code encodes, e.g. '{{ loyalty_id }}' or "
        "'https://shop.example/t/{{ ticket_id }}'. EAN-13: 12 digits (the check digit is "
        "added) or 13 (the check digit is verified); UPC-A: 11 or 12."
    )
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per placeholder when the profile lacks it."
    )
    foreground: Color = Field("#000000", description="The dark modules (bars), opaque.")
    background: Color = Field("#FFFFFF", description="The light modules and the block, opaque.")
    quiet_zone: int | None = Field(
        None,
        ge=0,
        le=40,
        description="Light margin beside the code, in modules; default the symbology's "
        "minimum: 4 for QR, 10 for Code 128, 11 for EAN-13, 9 for UPC-A.",
    )
    padding: int = Field(8, ge=0, le=500, description="Space around the code, at 1×.")
    error_correction: ErrorCorrection = Field(
        "M",
        description="QR error correction (L 7%, M 15%, Q 25%, H 30%), raised when that does "
        "not make the code larger.",
    )
    text: bool = Field(True, description="The value in digits or letters under a 1D code.")
    text_size: int = Field(16, ge=6, le=200, description="Font size of the text, at 1×.")
    text_weight: Weight = "regular"
    family: FontFamily = DEFAULT_FAMILY

    @model_validator(mode="after")
    def _scannable(self) -> CodeParams:
        for name in ("foreground", "background"):
            color = getattr(self, name)
            if len(color) == 9 and color[7:].upper() != "FF":
                raise ValueError(f"{name} must be opaque: a scanner reads the code on it")
        dark = _luminance(_opaque(self.foreground))
        light = _luminance(_opaque(self.background))
        if (light + 0.05) / (dark + 0.05) < MIN_CONTRAST:
            raise ValueError(
                f"the foreground must be darker than the background, with a contrast of at "
                f"least {MIN_CONTRAST:g}:1, for scanners to read the code"
            )
        if placeholders(self.value) <= set(self.defaults):  # the value as drawn without fields
            try:
                value = fill_value(self.value, {}, self.defaults)
            except Exception as exc:  # an expression that fails on the defaults' strings
                raise ValueError("value: the template fails on the defaults") from exc
            try:
                encode(self.symbology, value, self.error_correction)
            except UnencodableValue as exc:
                raise ValueError(f"value: {exc}") from None
        return self


class CodeRenderer(Renderer[CodeParams]):
    """Draws a QR code or barcode of the filled value, in whole-pixel modules."""

    type = "code"
    params_model = CodeParams

    def fields_used(self, params: CodeParams) -> frozenset[str]:
        return placeholders(params.value)

    def render(self, params: CodeParams, request: RenderRequest) -> Image.Image:
        try:
            value = fill_value(params.value, request.fields, params.defaults)
        except Exception as exc:  # any expression can fail on arbitrary profile data
            raise ContentUnavailable("the code's value template failed on the profile") from exc
        try:
            symbol = encode(params.symbology, value, params.error_correction)
        except UnencodableValue as exc:
            raise ContentUnavailable(f"the recipient's value cannot be drawn: {exc}") from None
        image = Image.new("RGB", (request.width, request.height), _opaque(params.background))
        quiet = QUIET_ZONES[params.symbology] if params.quiet_zone is None else params.quiet_zone
        if params.symbology == "qr":
            _draw_qr(image, params, symbol, quiet, request.scale)
        else:
            _draw_bars(image, params, symbol, quiet, request.scale)
        return image


def module_size(room: int, modules: int, scale: int) -> int:
    """Whole pixels per module for ``modules`` in ``room`` output pixels: a whole number of
    CSS pixels times the scale, so the 2× image is the 1× one twice as sharp; else (too small
    at 1×) as many device pixels as fit. 0: the code does not fit."""
    css = room // scale // modules
    return css * scale if css >= 1 else room // modules


def _modules(rows: tuple[bytes, ...], size: int, height: int | None = None) -> Image.Image:
    """A mask of the dark modules, ``size`` pixels each (1D: ``height`` pixels tall)."""
    mask = Image.frombytes("L", (len(rows[0]), len(rows)), b"".join(rows).replace(b"\x01", b"\xff"))
    tall = len(rows) * size if height is None else height
    return mask.resize((mask.width * size, tall), Image.Resampling.NEAREST)


def _draw_qr(
    image: Image.Image, params: CodeParams, symbol: Symbol, quiet: int, scale: int
) -> None:
    padding = params.padding * scale
    room = min(image.width, image.height) - 2 * padding
    size = module_size(room, symbol.columns + 2 * quiet, scale) if room > 0 else 0
    if size < 1:
        raise ContentUnavailable("the block is too small for the QR code")
    side = symbol.columns * size
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image.paste(_opaque(params.foreground), (left, top), _modules(symbol.rows, size))


def _draw_bars(
    image: Image.Image, params: CodeParams, symbol: Symbol, quiet: int, scale: int
) -> None:
    padding = params.padding * scale
    room_width = image.width - 2 * padding
    room_height = image.height - 2 * padding
    size = module_size(room_width, symbol.columns + 2 * quiet, scale) if room_width > 0 else 0
    least = MIN_BAR_HEIGHT * scale
    if size < 1 or room_height < least:
        raise ContentUnavailable("the block is too small for the barcode")
    width = symbol.columns * size
    font = _text_font(params, symbol.text, width, scale) if params.text else None
    text_height = 0
    if font is not None:
        ascent, descent = font.getmetrics()
        text_height = ascent + descent + TEXT_GAP * scale
        if room_height - text_height < least:
            font, text_height = None, 0  # the bars first: no room for both
    bar_height = room_height - text_height
    left, top = (image.width - width) // 2, padding
    image.paste(_opaque(params.foreground), (left, top), _modules(symbol.rows, size, bar_height))
    if font is not None:
        ImageDraw.Draw(image).text(
            (image.width / 2, top + bar_height + TEXT_GAP * scale),
            symbol.text,
            font=font,
            fill=_opaque(params.foreground),
            anchor="ma",
        )


def _text_font(
    params: CodeParams, text: str, width: int, scale: int
) -> ImageFont.FreeTypeFont | None:
    """The text's font, shrunk until the text is no wider than the bars (None: it cannot be)."""
    size = params.text_size * scale
    while True:
        font = load_font(params.family, params.text_weight, size)
        if font.getlength(text) <= width:
            return font
        if size <= MIN_FONT_SIZE:
            return None
        size = max(MIN_FONT_SIZE, int(size * 0.9))


RENDERER = CodeRenderer()
