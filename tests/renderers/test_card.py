"""The offer / product card renderer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from renderers.base import RenderRequest
from renderers.card import (
    RENDERER,
    CardParams,
    format_price,
    resolve_content,
    to_number,
)
from renderers.registry import registry
from tests.renderers.pixels import color_box, color_count, longest_run
from tests.renderers.reference import assert_matches_reference

PLACEHOLDER = "#E5E7EB"
BADGE = "#DC2626"
BUTTON = "#0F766E"
OLD_PRICE = "#FF00FF"
PRODUCT_BLUE = "#3B82F6"
FIELDS = {
    "item_title": "Wireless headphones",
    "item_description": "Noise cancelling, 30 hours of battery life.",
    "item_price": "1234.5",
    "item_old_price": 1499,
}


@dataclass(frozen=True)
class AssetRequest(RenderRequest):
    """A request carrying decoded assets, as the server will supply them."""

    assets: Mapping[str, Image.Image] = field(default_factory=dict)


def asset_id(image: Image.Image) -> str:
    """A content-addressed asset id, as the server gives its (decoded) assets."""
    return "sha256:" + hashlib.sha256(image.mode.encode() + image.tobytes()).hexdigest()


def product_image() -> Image.Image:
    """A transparent 400×300 product shot: a blue disc with an amber square."""
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((50, 20, 350, 280), fill=PRODUCT_BLUE)
    draw.rectangle((150, 100, 250, 200), fill="#F59E0B")
    return image


ASSET = asset_id(product_image())


def card(**extra: Any) -> CardParams:
    """A full card: image, title, subtitle, prices, badge and button."""
    document: dict[str, Any] = {
        "type": "card",
        "background": "#F9FAFB",
        "image_asset": ASSET,
        "title": {"text": "{{ item_title }}"},
        "subtitle": {"text": "{{ item_description }}"},
        "price": "{{ item_price }}",
        "old_price": "{{ item_old_price }}",
        "badge": {"text": "-20%", "background": BADGE},
        "cta": {"text": "Shop now", "background": BUTTON},
        "defaults": {"item_title": "Our offer"},
    }
    document.update(extra)
    return CardParams.model_validate(document)


def render(
    params: CardParams,
    fields: Mapping[str, Any] = FIELDS,
    *,
    size: tuple[int, int] = (600, 200),
    scale: int = 1,
    with_asset: bool = True,
) -> Image.Image:
    """Render with the product image supplied (or not)."""
    assets = {ASSET: product_image()} if with_asset else {}
    request = AssetRequest(size[0] * scale, size[1] * scale, fields, scale=scale, assets=assets)
    return RENDERER.render(params, request)


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("nl_NL", "EUR", "€\u00a01.234,50"),
        ("en_GB", "GBP", "£1,234.50"),
        ("de_DE", "EUR", "1.234,50\u00a0€"),
    ],
)
def test_prices_are_formatted_for_the_locale(locale: str, currency: str, expected: str) -> None:
    assert format_price(Decimal("1234.5"), currency, locale) == expected


@pytest.mark.parametrize(
    ("raw", "locale", "expected"),
    [
        ("1234.5", "nl_NL", Decimal("1234.5")),
        (" 19.99 ", "en_GB", Decimal("19.99")),
        ("1.234,50", "nl_NL", Decimal("1234.50")),
        ("1,234.50", "en_GB", Decimal("1234.50")),
        (12.5, "nl_NL", Decimal("12.5")),
        ("-5", "nl_NL", Decimal("-5")),
        ("12,50", "en_GB", None),
        ("€ 12", "nl_NL", None),
        ("", "nl_NL", None),
        ("None", "nl_NL", None),
        ("NaN", "nl_NL", None),
        ("-Infinity", "nl_NL", None),
        ("1e400", "nl_NL", None),
        ("1" * 30, "nl_NL", None),
    ],
)
def test_numbers_are_read_in_machine_then_locale_format(
    raw: float | str, locale: str, expected: Decimal | None
) -> None:
    assert to_number(raw, locale) == expected


@pytest.mark.parametrize(
    ("price", "old_price", "shown"),
    [
        ("10", "15", ("€\u00a010,00", "€\u00a015,00")),
        ("10", "10", ("€\u00a010,00", None)),
        ("10", "8", ("€\u00a010,00", None)),
        ("10", "abc", ("€\u00a010,00", None)),
        ("", "15", (None, None)),
        ("-10", "15", (None, None)),
        ("NaN", "15", (None, None)),
        ("0", "15", ("€\u00a00,00", "€\u00a015,00")),
    ],
)
def test_prices_that_are_not_numbers_are_left_out(
    price: str, old_price: str, shown: tuple[str | None, str | None]
) -> None:
    params = card()
    request = RenderRequest(600, 200, {"item_price": price, "item_old_price": old_price})
    content = resolve_content(params, request)
    assert (content.price, content.old_price) == shown


def test_horizontal_card_matches_reference() -> None:
    assert_matches_reference(render(card()), "card_horizontal")


def test_vertical_card_matches_reference() -> None:
    assert_matches_reference(render(card(layout="vertical"), size=(300, 420)), "card_vertical")


def test_card_without_image_matches_reference() -> None:
    params = card(image_asset=None, badge=None, price=49.95, old_price=None, locale="en_GB")
    fields = {"item_title": "Spring sale", "item_description": "Everything must go."}
    assert_matches_reference(render(params, fields), "card_text_only")


def test_missing_asset_matches_reference() -> None:
    assert_matches_reference(render(card(), with_asset=False), "card_missing_asset")


def test_old_price_is_struck_through() -> None:
    params = card(image_asset=None, old_price_color=OLD_PRICE)
    struck = render(params)
    # "€ 1.499,00" at 70% of 28 px is about 110 px wide; a glyph has no run that long.
    assert longest_run(struck, OLD_PRICE) >= 80
    not_a_discount = render(params, {**FIELDS, "item_old_price": "1000"})
    assert color_count(not_a_discount, OLD_PRICE) == 0


def test_horizontal_layout_puts_the_image_left() -> None:
    image = render(card(badge=None), with_asset=False)
    # 40% of the 568 px content width, the full 168 px content height, inside the 16 px padding.
    assert color_box(image, PLACEHOLDER) == (16, 16, 243, 184)


def test_vertical_layout_puts_the_image_on_top() -> None:
    image = render(card(badge=None, layout="vertical"), size=(300, 420), with_asset=False)
    assert color_box(image, PLACEHOLDER) == (16, 16, 284, 171)


def test_supplied_asset_is_drawn_inside_its_box() -> None:
    image = render(card(badge=None))
    assert color_count(image, PLACEHOLDER) == 0
    box = color_box(image, PRODUCT_BLUE)
    assert box is not None
    left, top, right, bottom = box
    assert min(left, top) >= 16
    assert right <= 243
    assert bottom <= 184
    # contain: the 4:3 image fills the box's width, centred vertically.
    assert right - left > 0.7 * 227


@pytest.mark.parametrize(
    ("fit", "expected"),
    [
        # 1:3 into 227×168: 56 px wide, centred; or cropped to fill the whole box.
        ("contain", (101, 16, 157, 184)),
        ("cover", (16, 16, 243, 184)),
    ],
)
def test_image_fit(fit: str, expected: tuple[int, int, int, int]) -> None:
    tall = Image.new("RGB", (100, 300), PRODUCT_BLUE)
    request = AssetRequest(600, 200, FIELDS, assets={asset_id(tall): tall})
    image = RENDERER.render(card(image_asset=asset_id(tall), badge=None, image_fit=fit), request)
    assert color_box(image, PRODUCT_BLUE) == expected


@pytest.mark.parametrize(
    "assets",
    [
        {},
        {ASSET: "not an image"},
        {"sha256:" + "cd" * 32: Image.new("RGB", (10, 10), "red")},
        {ASSET: Image.new("RGB", (0, 0))},
    ],
)
def test_missing_or_unusable_asset_draws_a_placeholder(assets: dict[str, Any]) -> None:
    request = AssetRequest(600, 200, FIELDS, assets=assets)
    image = RENDERER.render(card(badge=None), request)
    assert color_box(image, PLACEHOLDER) == (16, 16, 243, 184)


def test_request_without_assets_draws_a_placeholder() -> None:
    image = RENDERER.render(card(badge=None), RenderRequest(600, 200, FIELDS))
    assert color_box(image, PLACEHOLDER) == (16, 16, 243, 184)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "CMYK", "I", "F", "I;16"])
def test_assets_of_any_mode_are_drawn(mode: str) -> None:
    odd = Image.new(mode, (40, 30))
    request = AssetRequest(600, 200, FIELDS, assets={asset_id(odd): odd})
    image = RENDERER.render(card(image_asset=asset_id(odd), badge=None), request)
    assert image.size == (600, 200)


@pytest.mark.parametrize(
    ("corner", "expected"),
    [
        ("top-left", lambda b: b[0] == 24 and b[1] == 24),
        ("top-right", lambda b: b[2] == 243 - 8 and b[1] == 24),
        ("bottom-left", lambda b: b[0] == 24 and b[3] == 184 - 8),
        ("bottom-right", lambda b: b[2] == 243 - 8 and b[3] == 184 - 8),
    ],
)
def test_badge_sits_in_its_corner_of_the_image(corner: str, expected: Any) -> None:
    image = render(card(badge={"text": "-20%", "background": BADGE, "corner": corner}))
    box = color_box(image, BADGE)
    assert box is not None
    assert expected(box), box
    assert color_count(image, "#FFFFFF") > 0  # the badge's text


def test_badge_and_button_with_empty_text_are_left_out() -> None:
    params = card(badge={"text": "{{ discount }}", "background": BADGE}, cta={"text": " "})
    image = render(params)
    assert color_box(image, BADGE) is None
    assert color_box(image, BUTTON) is None


def test_button_is_under_the_texts_aligned_with_them() -> None:
    horizontal = color_box(render(card(badge=None, title=None)), BUTTON)
    assert horizontal is not None
    assert horizontal[0] == 243 + 16  # the text column starts one padding after the image
    vertical = color_box(render(card(badge=None, layout="vertical"), size=(300, 420)), BUTTON)
    assert vertical is not None
    assert abs((vertical[0] + vertical[2]) / 2 - 150) <= 1  # centred below the image
    assert vertical[1] > 171


def test_placeholders_take_their_defaults() -> None:
    missing = {k: v for k, v in FIELDS.items() if k != "item_title"}
    with_default = render(card(), missing)
    assert (
        with_default.tobytes() == render(card(), {**missing, "item_title": "Our offer"}).tobytes()
    )
    assert with_default.tobytes() != render(card()).tobytes()


def test_fields_used_are_the_placeholders() -> None:
    params = card(badge={"text": "{{ discount }}"}, cta={"text": "Hi {{ first_name }}"})
    assert RENDERER.fields_used(params) == {
        "item_title",
        "item_description",
        "item_price",
        "item_old_price",
        "discount",
        "first_name",
    }
    assert RENDERER.fields_used(card(price=10.0, old_price=None, badge=None, cta=None)) == {
        "item_title",
        "item_description",
    }


def test_assets_used() -> None:
    assert RENDERER.assets_used(card()) == {ASSET}
    assert RENDERER.assets_used(card(image_asset=None)) == frozenset()


def test_scale_two_doubles_every_size() -> None:
    single = render(card(), with_asset=False)
    double = render(card(), with_asset=False, scale=2)
    assert double.size == (1200, 400)
    for color in (PLACEHOLDER, BADGE, BUTTON):
        one, two = color_box(single, color), color_box(double, color)
        assert one is not None
        assert two is not None
        assert all(abs(2 * a - b) <= 3 for a, b in zip(one, two, strict=True)), (color, one, two)


@pytest.mark.parametrize(
    "change",
    [
        {"currency": "XYZ"},
        {"currency": "eur"},
        {"locale": "xx_YY"},
        {"image_asset": "https://example.com/a.png"},
        {"price": True},
        {"price": "{{ unclosed"},
        {"title": {"text": "{% for %}"}},
        {"family": "comic-sans"},
        {"layout": "diagonal"},
    ],
)
def test_invalid_params_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        card(**change)


def test_locale_is_normalised() -> None:
    assert card(locale="NL_nl").locale == "nl_NL"


def test_card_is_registered() -> None:
    assert registry()["card"] is RENDERER


def test_a_copy_with_an_image_does_not_share_the_cache_key_of_its_original() -> None:
    """A newsletter slot copies its card layout with the item's image: the copy's cache key
    must name that image, even after the original's key was worked out (and kept)."""
    layout = CardParams(layout="horizontal")
    request = RenderRequest(width=600, height=200, fields=FIELDS)
    without = RENDERER.cache_key(layout, request)
    with_image = layout.model_copy(update={"image_asset": "sha256:" + "a" * 64})
    assert RENDERER.cache_key(with_image, request) != without
    rebuilt = CardParams(layout="horizontal", image_asset="sha256:" + "a" * 64)
    assert RENDERER.cache_key(with_image, request) == RENDERER.cache_key(rebuilt, request)
    assert RENDERER.cache_key(layout, request) == without
