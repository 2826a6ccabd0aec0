"""Offer card: product image, title, subtitle, prices, badge and call-to-action button.

The product image is an asset id in the params; the server supplies the decoded image in
``request.assets`` (a missing or unusable one is drawn as a neutral placeholder). Besides the
card itself this module holds the small value and drawing helpers the progress bar shares:
template-or-number params, locale-aware number parsing and anti-aliased rounded shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, is_currency, parse_decimal
from PIL import Image, ImageColor, ImageDraw, ImageFont
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from renderers.base import Renderer, RendererParams, RenderRequest
from renderers.colors import Color, canvas, ink
from renderers.fonts import DEFAULT_FAMILY, FONT_FILES, Weight, load_font
from renderers.templating import fill, placeholders, template_error, typeset
from renderers.text_layout import (
    MIN_FONT_SIZE,
    FittedText,
    TextBox,
    fit,
    fit_group,
    min_size_for,
    text_width,
)

MAX_NUMBER = Decimal("1e15")
"""Numbers beyond this magnitude are treated as invalid data, not drawn."""
SUPERSAMPLE = 4
"""Rounded shapes are drawn this many times larger, then reduced: anti-aliased edges."""
LINE_SPACING = 1.2
UNBOUNDED = 1 << 20
"""A box dimension that never constrains text (fit then only wraps to the width)."""
MIN_SHRINK = 0.3
"""The card's column shrinks its sizes together, down to this share of the configured ones."""

Align = Literal["left", "center", "right"]
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]


def _valid_template(source: str) -> str:
    if problem := template_error(source):
        raise ValueError(problem)
    return source


def _known_family(family: str) -> str:
    if not any(f == family for f, _ in FONT_FILES):
        raise ValueError(f"unknown font family {family!r}")
    return family


def _known_locale(name: str) -> str:
    try:
        return str(Locale.parse(name))
    except (ValueError, UnknownLocaleError):
        raise ValueError(f"unknown locale {name!r} (use e.g. 'nl_NL')") from None


def _known_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"unknown ISO 4217 currency code {code!r}")
    return code


TemplateText = Annotated[str, Field(max_length=1000), AfterValidator(_valid_template)]
NumberOrTemplate = (
    Annotated[float, Field(strict=True, allow_inf_nan=False)]
    | Annotated[str, Field(max_length=200), AfterValidator(_valid_template)]
)
"""A number, or a template resolving to one such as ``{{ item_price }}``."""
FontFamily = Annotated[str, AfterValidator(_known_family)]
LocaleName = Annotated[str, AfterValidator(_known_locale)]
CurrencyCode = Annotated[str, AfterValidator(_known_currency)]
AssetId = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


def safe_fill(
    source: str, fields: Mapping[str, Any], defaults: Mapping[str, str], max_length: int
) -> str:
    """``fill`` that never raises: if profile values break the template, use the defaults alone."""
    try:
        return fill(source, fields, defaults, max_length)
    except Exception:  # any expression can fail on arbitrary profile data
        try:
            return fill(source, {}, defaults, max_length)
        except Exception:
            return ""


def to_number(raw: float | str, locale: str) -> Decimal | None:
    """``raw`` as a finite number within ±MAX_NUMBER, else None.

    Strings are read in machine format first (``1234.5``), then in the locale's (``1.234,50``).
    """
    try:
        if isinstance(raw, float):
            number = Decimal(repr(raw))
        else:
            text = raw.strip()
            try:
                number = Decimal(text)
            except InvalidOperation:
                number = parse_decimal(text, locale=locale, strict=True)
        within = number.is_finite() and abs(number) <= MAX_NUMBER
    except (ArithmeticError, ValueError):  # unparsable, or overflows the decimal context
        return None
    return number if within else None


def resolve_number(
    value: float | str | None,
    request: RenderRequest,
    defaults: Mapping[str, str],
    locale: str,
) -> Decimal | None:
    """A number param, filling it first when it is a template; None when it is not a number."""
    if value is None:
        return None
    if isinstance(value, str):
        value = safe_fill(value, request.fields, defaults, request.max_text_length)
    return to_number(value, locale)


def format_price(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` in ``currency`` as written in ``locale`` (``€ 1.234,50`` for nl_NL, EUR)."""
    return format_currency(amount, currency, locale=locale)


@lru_cache(maxsize=128)
def rounded_mask(width: int, height: int, radius: int) -> Image.Image:
    """An anti-aliased rounded-rectangle mask; cached, so treat it as read-only."""
    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    big_radius = min(radius * SUPERSAMPLE, min(big.size) // 2)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, big.width - 1, big.height - 1), radius=big_radius, fill=255
    )
    return big.reduce(SUPERSAMPLE)


def paint(image: Image.Image, origin: tuple[int, int], mask: Image.Image, color: str) -> None:
    """Fill ``color`` through ``mask`` at ``origin``; a colour's alpha scales the mask."""
    rgba = ImageColor.getrgb(color)
    if len(rgba) == 4 and rgba[3] < 255:
        alpha = rgba[3]
        mask = mask.point(lambda v: v * alpha // 255)
    x, y = origin
    image.paste(rgba[:3], (x, y, x + mask.width, y + mask.height), mask)


def x_for(align: Align, left: int, width: int, item_width: float) -> float:
    """Left edge of an item of ``item_width`` aligned in the span from ``left``."""
    if align == "center":
        return left + (width - item_width) / 2
    if align == "right":
        return left + width - item_width
    return left


class CardText(BaseModel):
    """A text of the card: a template such as ``{{ item_title }}`` and its styling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TemplateText
    font_size: int = Field(24, ge=6, le=400)
    color: Color = "#111827"
    weight: Weight = "regular"
    max_lines: int = Field(2, ge=1, le=20)


class CardTitle(CardText):
    """The card's title: bold and large by default."""

    font_size: int = Field(28, ge=6, le=400)
    weight: Weight = "bold"


class CardSubtitle(CardText):
    """The card's subtitle or description: smaller and grey by default."""

    font_size: int = Field(18, ge=6, le=400)
    color: Color = "#4B5563"
    max_lines: int = Field(3, ge=1, le=20)


class CardBadge(BaseModel):
    """A pill in a corner of the product image (of the card without one), such as ``-20%``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TemplateText
    background: Color = "#DC2626"
    color: Color = "#FFFFFF"
    font_size: int = Field(16, ge=6, le=200)
    corner: Corner = "top-left"


class CardButton(BaseModel):
    """The call-to-action button: a rounded rectangle with bold text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TemplateText
    background: Color = "#111827"
    color: Color = "#FFFFFF"
    font_size: int = Field(18, ge=6, le=200)
    radius: int = Field(8, ge=0, le=500)


class CardParams(RendererParams):
    """Parameters of an offer / product card."""

    type: Literal["card"] = "card"
    background: Color = "#FFFFFF"
    layout: Literal["horizontal", "vertical"] = Field(
        "horizontal", description="Product image on the left (horizontal) or on top (vertical)."
    )
    padding: int = Field(16, ge=0, le=500)
    gap: int = Field(8, ge=0, le=200, description="Space between the texts, prices and button.")
    family: FontFamily = DEFAULT_FAMILY
    align: Align | None = Field(
        None, description="Text alignment; by default left beside the image, centred below it."
    )
    image_asset: AssetId | None = None
    image_share: float = Field(
        0.4,
        ge=0.1,
        le=0.9,
        description="Share of the width (horizontal) or height the image takes.",
    )
    image_fit: Literal["contain", "cover"] = "contain"
    placeholder_color: Color = Field("#E5E7EB", description="Drawn when the image is missing.")
    title: CardTitle | None = None
    subtitle: CardSubtitle | None = None
    price: NumberOrTemplate | None = None
    old_price: NumberOrTemplate | None = Field(
        None, description="Struck through; shown only above a shown price."
    )
    currency: CurrencyCode = "EUR"
    locale: LocaleName = "nl_NL"
    price_size: int = Field(28, ge=6, le=400)
    price_color: Color = "#111827"
    old_price_color: Color = "#6B7280"
    badge: CardBadge | None = None
    cta: CardButton | None = None
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per placeholder when the profile lacks it."
    )
    typography: bool = Field(
        True,
        description="Typographic quotes, apostrophes and minus signs (for the locale's "
        "language); false draws the texts as written.",
    )


@dataclass(frozen=True)
class _Box:
    """A rectangle of the card, in output pixels."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class _Text:
    """Wrapped lines of one text, each aligned in the column."""

    fitted: FittedText
    color: str

    @property
    def height(self) -> int:
        return len(self.fitted.lines) * self.fitted.line_height

    def draw(self, image: Image.Image, column: _Box, align: Align, y: int) -> None:
        draw = ImageDraw.Draw(image)
        for line in self.fitted.lines:
            x = x_for(align, column.left, column.width, text_width(self.fitted.font, line))
            draw.text((x, y), line, font=self.fitted.font, fill=ink(image, self.color))
            y += self.fitted.line_height


@dataclass(frozen=True)
class _Prices:
    """The price, then the old price struck through, on one baseline."""

    price: str
    font: ImageFont.FreeTypeFont
    color: str
    old_price: str | None
    old_font: ImageFont.FreeTypeFont
    old_color: str
    spacing: int

    @property
    def width(self) -> float:
        width = self.font.getlength(self.price)
        if self.old_price:
            width += self.spacing + self.old_font.getlength(self.old_price)
        return width

    @property
    def height(self) -> int:
        ascent, descent = self.font.getmetrics()
        return ascent + descent

    def draw(self, image: Image.Image, column: _Box, align: Align, y: int) -> None:
        draw = ImageDraw.Draw(image)
        color, old_color = ink(image, self.color), ink(image, self.old_color)
        x = x_for(align, column.left, column.width, self.width)
        baseline = y + self.font.getmetrics()[0]
        draw.text((x, baseline), self.price, font=self.font, fill=color, anchor="ls")
        if not self.old_price:
            return
        x += self.font.getlength(self.price) + self.spacing
        draw.text((x, baseline), self.old_price, font=self.old_font, fill=old_color, anchor="ls")
        x_height = -self.old_font.getbbox("x", anchor="ls")[1]
        strike_y = round(baseline - x_height / 2)
        thickness = max(1, round(self.old_font.size / 14))
        end = x + self.old_font.getlength(self.old_price)
        draw.line((x, strike_y, end, strike_y), fill=old_color, width=thickness)


@dataclass(frozen=True)
class _Pill:
    """Text centred on a rounded rectangle: the badge and the button."""

    text: str
    font: ImageFont.FreeTypeFont
    background: str
    color: str
    width: int
    height: int
    radius: int

    def draw_at(self, image: Image.Image, x: int, y: int) -> None:
        paint(image, (x, y), rounded_mask(self.width, self.height, self.radius), self.background)
        center = (x + self.width / 2, y + self.height / 2)
        color = ink(image, self.color)
        ImageDraw.Draw(image).text(center, self.text, font=self.font, fill=color, anchor="mm")

    def draw(self, image: Image.Image, column: _Box, align: Align, y: int) -> None:
        self.draw_at(image, round(x_for(align, column.left, column.width, self.width)), y)


_Element = _Text | _Prices | _Pill


def _pill(
    text: str,
    *,
    family: str,
    size: int,
    max_width: int,
    background: str,
    color: str,
    radius: int | None,
) -> _Pill | None:
    """A one-line pill of ``text`` no wider than ``max_width`` (None for empty text)."""
    pad_x, pad_y = round(size * 0.9), round(size * 0.45)
    fitted = fit(
        text,
        family=family,
        weight="bold",
        size=size,
        max_width=max(1, max_width - 2 * pad_x),
        max_height=UNBOUNDED,
        max_lines=1,
        line_spacing=LINE_SPACING,
    )
    if not fitted.lines:
        return None
    ascent, descent = fitted.font.getmetrics()
    height = ascent + descent + 2 * pad_y
    width = min(max_width, round(text_width(fitted.font, fitted.lines[0])) + 2 * pad_x)
    return _Pill(
        fitted.lines[0],
        fitted.font,
        background,
        color,
        max(1, width),
        height,
        height // 2 if radius is None else radius,
    )


@dataclass(frozen=True)
class CardContent:
    """The card's resolved texts and prices, ready to lay out."""

    title: str
    subtitle: str
    price: str | None
    old_price: str | None
    cta: str
    badge: str


def resolve_content(params: CardParams, request: RenderRequest) -> CardContent:
    """Fill (and typeset) every template; prices that are not non-negative numbers are left out.

    The old price shows only above a shown price, since a struck-through price that is not
    higher than the real one would misstate the offer.
    """

    def text(part: CardText | CardBadge | CardButton | None) -> str:
        if part is None:
            return ""
        filled = safe_fill(part.text, request.fields, params.defaults, request.max_text_length)
        return typeset(filled, params.locale) if params.typography else filled

    price = resolve_number(params.price, request, params.defaults, params.locale)
    old = resolve_number(params.old_price, request, params.defaults, params.locale)
    if price is None or price < 0:
        price = old = None
    elif old is not None and old <= price:
        old = None
    return CardContent(
        title=text(params.title),
        subtitle=text(params.subtitle),
        price=format_price(price, params.currency, params.locale) if price is not None else None,
        old_price=format_price(old, params.currency, params.locale) if old is not None else None,
        cta=text(params.cta),
        badge=text(params.badge),
    )


class CardRenderer(Renderer[CardParams]):
    """Draws the product image beside or above a column of title, subtitle, prices and button."""

    type = "card"
    params_model = CardParams

    def fields_used(self, params: CardParams) -> frozenset[str]:
        sources = [p.text for p in (params.title, params.subtitle, params.badge, params.cta) if p]
        sources += [p for p in (params.price, params.old_price) if isinstance(p, str)]
        return frozenset().union(*(placeholders(source) for source in sources))

    def assets_used(self, params: CardParams) -> frozenset[str]:
        """Asset ids whose decoded images the render reads from ``request.assets``."""
        return frozenset({params.image_asset}) if params.image_asset else frozenset()

    def render(self, params: CardParams, request: RenderRequest) -> Image.Image:
        image = canvas((request.width, request.height), params.background)
        scale = request.scale
        padding = params.padding * scale
        content = _Box(
            padding,
            padding,
            max(1, request.width - 2 * padding),
            max(1, request.height - 2 * padding),
        )
        picture, column = _split(params, content, padding)
        if picture is not None:
            _draw_product(image, picture, params, request)
        resolved = resolve_content(params, request)
        align = params.align or ("left" if params.layout == "horizontal" else "center")
        elements, spacing = _fit_column(params, resolved, column, scale)
        total = sum(e.height for e in elements) + spacing * max(0, len(elements) - 1)
        y = column.top + max(0, (column.height - total) // 2)
        for element in elements:
            element.draw(image, column, align, y)
            y += element.height + spacing
        if resolved.badge:
            _draw_badge(image, params, resolved.badge, picture or content, scale)
        return image


def _split(params: CardParams, content: _Box, spacing: int) -> tuple[_Box | None, _Box]:
    """The product image's box (None without an image) and the text column's box."""
    if params.image_asset is None:
        return None, content
    if params.layout == "horizontal":
        width = max(1, round(content.width * params.image_share))
        picture = _Box(content.left, content.top, width, content.height)
        left = content.left + width + spacing
        return picture, _Box(
            left, content.top, max(1, content.width - width - spacing), content.height
        )
    height = max(1, round(content.height * params.image_share))
    picture = _Box(content.left, content.top, content.width, height)
    top = content.top + height + spacing
    return picture, _Box(
        content.left, top, content.width, max(1, content.height - height - spacing)
    )


def _product_image(request: RenderRequest, asset_id: str) -> Image.Image | None:
    """The decoded asset the server supplied, if it is a usable image."""
    assets = getattr(request, "assets", {})
    found = assets.get(asset_id) if isinstance(assets, Mapping) else None
    if not isinstance(found, Image.Image) or found.width < 1 or found.height < 1:
        return None
    return found


def _draw_product(
    image: Image.Image, box: _Box, params: CardParams, request: RenderRequest
) -> None:
    """The product image fitted into ``box``, or a neutral placeholder when it is missing."""
    asset_id = params.image_asset or ""
    product = _product_image(request, asset_id)
    fitted = None
    if product is not None:
        try:
            fitted = _fit_image(_Asset(asset_id, product), box.width, box.height, params.image_fit)
        except (OSError, ValueError):  # a mode Pillow cannot convert or resample
            fitted = None
    if fitted is None:
        color = ImageColor.getrgb(params.placeholder_color)[:3]
        image.paste(color, (box.left, box.top, box.left + box.width, box.top + box.height))
        return
    x = box.left + (box.width - fitted.width) // 2
    y = box.top + (box.height - fitted.height) // 2
    if image.mode == "RGBA":  # a transparent card: composite, keeping the card's alpha
        image.alpha_composite(fitted if fitted.mode == "RGBA" else fitted.convert("RGBA"), (x, y))
    else:
        image.paste(fitted, (x, y), fitted if fitted.mode == "RGBA" else None)


@dataclass(frozen=True)
class _Asset:
    """A decoded asset, equal to another by id alone: ids are content hashes."""

    id: str
    image: Image.Image = field(compare=False)


@lru_cache(maxsize=64)
def _fit_image(asset: _Asset, width: int, height: int, mode: str) -> Image.Image:
    """The asset scaled to fit inside (contain) or to fill and crop to (cover) the size.

    Cached per asset id and size, so a product shown to many recipients is resampled once;
    treat the result as read-only.
    """
    source = asset.image
    if source.mode not in ("RGB", "RGBA"):
        source = source.convert("RGBA")
    ratio_x, ratio_y = width / source.width, height / source.height
    if mode == "cover":
        ratio = max(ratio_x, ratio_y)
        crop_w, crop_h = width / ratio, height / ratio
        left, top = (source.width - crop_w) / 2, (source.height - crop_h) / 2
        region = (left, top, left + crop_w, top + crop_h)
        return source.resize(
            (width, height), Image.Resampling.LANCZOS, box=region, reducing_gap=3.0
        )
    ratio = min(ratio_x, ratio_y)
    size = (max(1, round(source.width * ratio)), max(1, round(source.height * ratio)))
    return source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _fit_column(
    params: CardParams, content: CardContent, column: _Box, scale: int
) -> tuple[list[_Element], int]:
    """The column's elements, shrunk together until they fit its height; the spacing used.

    When even the smallest size is too tall, the subtitle goes first; the rest may then overflow.
    """
    factor = 1.0
    while True:
        elements, spacing = _column(params, content, column.width, scale * factor)
        total = sum(e.height for e in elements) + spacing * max(0, len(elements) - 1)
        if total <= column.height or factor <= MIN_SHRINK:
            break
        factor = max(MIN_SHRINK, factor * min(0.9, column.height / total))
    if total > column.height and content.subtitle:
        no_subtitle = CardContent(
            content.title, "", content.price, content.old_price, content.cta, content.badge
        )
        elements, spacing = _column(params, no_subtitle, column.width, scale * factor)
    return elements, spacing


def _column(
    params: CardParams, content: CardContent, width: int, factor: float
) -> tuple[list[_Element], int]:
    """The column's elements at ``factor`` times their configured sizes; the title and subtitle
    are fitted together (``fit_group``), so a long title shrinks them both, keeping their ratio,
    each to half its size at the least, then ends in an ellipsis."""

    def px(size: int) -> int:
        return max(MIN_FONT_SIZE, round(size * factor))

    texts = [
        (part, text)
        for part, text in ((params.title, content.title), (params.subtitle, content.subtitle))
        if part is not None and text
    ]
    boxes = [
        TextBox(
            text,
            params.family,
            part.weight,
            px(part.font_size),
            part.max_lines,
            LINE_SPACING,
            min_size=min_size_for(px(part.font_size)),
        )
        for part, text in texts
    ]
    fitted_texts = fit_group(boxes, max_width=width, max_height=UNBOUNDED)
    elements: list[_Element] = [
        _Text(fitted, part.color)
        for (part, _), fitted in zip(texts, fitted_texts, strict=True)
        if fitted.lines
    ]
    spacing = round(params.gap * factor)
    if content.price:
        prices = _prices(params, content, width, px(params.price_size), spacing)
        if prices is not None:
            elements.append(prices)
    if params.cta is not None and content.cta:
        button = _pill(
            content.cta,
            family=params.family,
            size=px(params.cta.font_size),
            max_width=width,
            background=params.cta.background,
            color=params.cta.color,
            radius=round(params.cta.radius * factor),
        )
        if button is not None:
            elements.append(button)
    return elements, spacing


def _prices(
    params: CardParams, content: CardContent, width: int, size: int, spacing: int
) -> _Prices | None:
    """The price row, shrunk to the column width; without the old price if it cannot fit.

    A price is never cut short: if even the price alone does not fit, the row is left out.
    """
    old_price = content.old_price
    while True:
        row = _Prices(
            content.price or "",
            load_font(params.family, "bold", size),
            params.price_color,
            old_price,
            load_font(params.family, "regular", max(MIN_FONT_SIZE, round(size * 0.7))),
            params.old_price_color,
            spacing,
        )
        if row.width <= width:
            return row
        if size > MIN_FONT_SIZE:
            size = max(MIN_FONT_SIZE, min(size - 1, int(size * width / row.width)))
        elif old_price:
            old_price = None
        else:
            return None


def _draw_badge(
    image: Image.Image, params: CardParams, text: str, anchor: _Box, scale: int
) -> None:
    """The badge pill, inset in the given corner of ``anchor``."""
    if params.badge is None:
        return
    badge = _pill(
        text,
        family=params.family,
        size=params.badge.font_size * scale,
        max_width=max(1, anchor.width // 2),
        background=params.badge.background,
        color=params.badge.color,
        radius=None,
    )
    if badge is None:
        return
    inset = params.gap * scale
    corner = params.badge.corner
    x = anchor.left + inset
    if corner.endswith("right"):
        x = anchor.left + anchor.width - inset - badge.width
    y = anchor.top + inset
    if corner.startswith("bottom"):
        y = anchor.top + anchor.height - inset - badge.height
    badge.draw_at(image, x, y)


RENDERER = CardRenderer()
