"""The QR code and barcode block (``code``): every symbology read back by a real decoder (ZBar)
at 1× and 2×, in whole-pixel modules of two colours; bad EAN-13 and UPC-A values refused when
the block is saved, and a recipient's value that cannot be encoded served as the fallback."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from renderers.base import ContentUnavailable, RenderRequest
from renderers.codes import RENDERER, CodeParams, encode, gs1_check_digit
from renderers.registry import registry
from tests.scanner import ZBAR_TYPES, scan

SIZES = {"qr": (200, 200), "code128": (320, 120), "ean13": (300, 120), "upca": (300, 120)}
"""A block of a typical size for each symbology, at 1×."""
VALUES = {
    "qr": "https://shop.example/ticket/T-2026-0042?seat=12A",
    "code128": "LOY-0042-xyz",
    "ean13": "4006381333931",
    "upca": "036000291452",
}
"""A value of each symbology, as ZBar reads it back (EAN-13 and UPC-A with the check digit)."""


def code(symbology: str, **extra: Any) -> CodeParams:
    """A code block of ``symbology`` whose value is the profile's ``loyalty_id``."""
    document: dict[str, Any] = {
        "type": "code",
        "symbology": symbology,
        "value": "{{ loyalty_id }}",
        **extra,
    }
    return CodeParams.model_validate(document)


def render(
    params: CodeParams,
    fields: Mapping[str, Any],
    *,
    size: tuple[int, int] = (300, 120),
    scale: int = 1,
) -> Image.Image:
    """Render at ``size`` CSS pixels times ``scale``."""
    return RENDERER.render(
        params, RenderRequest(size[0] * scale, size[1] * scale, fields, scale=scale)
    )


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("symbology", sorted(VALUES))
def test_every_symbology_decodes_to_the_filled_value(symbology: str, scale: int) -> None:
    image = render(
        code(symbology), {"loyalty_id": VALUES[symbology]}, size=SIZES[symbology], scale=scale
    )
    assert scan(image, symbology) == [(ZBAR_TYPES[symbology], VALUES[symbology])]


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize(
    ("symbology", "data", "full"),
    [("ean13", "400638133393", "4006381333931"), ("upca", "03600029145", "036000291452")],
)
def test_a_gs1_value_without_its_check_digit_gets_it(
    symbology: str, data: str, full: str, scale: int
) -> None:
    image = render(code(symbology), {"loyalty_id": data}, scale=scale)
    assert scan(image, symbology) == [(ZBAR_TYPES[symbology], full)]


def test_a_value_from_a_newsletter_item_and_defaults() -> None:
    params = code("code128", value="SKU-{{ item_id }}", defaults={"item_id": "NONE"})
    assert scan(render(params, {"item_id": "A17"}), "code128") == [("CODE128", "SKU-A17")]
    assert scan(render(params, {}), "code128") == [("CODE128", "SKU-NONE")]
    assert RENDERER.fields_used(params) == {"item_id"}


@pytest.mark.parametrize("symbology", ["qr", "ean13"])
def test_modules_are_whole_pixels_in_two_colours_and_twice_as_many_at_2x(symbology: str) -> None:
    params = code(symbology, foreground="#1E3A8A", background="#FEF3C7", text=False)
    one, two = (
        render(params, {"loyalty_id": VALUES[symbology]}, size=SIZES[symbology], scale=scale)
        for scale in (1, 2)
    )
    for image in (one, two):
        assert {color for _, color in image.getcolors() or []} == {(30, 58, 138), (254, 243, 199)}
    # the 2× image is the 1× one with every pixel doubled: the same layout, twice as sharp
    assert one.resize(two.size, Image.Resampling.NEAREST).tobytes() == two.tobytes()


def test_the_code_fills_the_block_by_whole_modules_within_its_quiet_zone() -> None:
    params = code("qr", padding=0)
    image = render(params, {"loyalty_id": "hi"}, size=(200, 200))
    modules = len(encode("qr", "hi", "M").rows)  # 21: version 1
    size = 200 // (modules + 8)
    dark = image.convert("L").point(lambda v: 255 if v < 128 else 0).getbbox()
    assert dark is not None
    assert dark[2] - dark[0] == modules * size
    assert dark[0] >= 4 * size  # the quiet zone of 4 modules is light


@pytest.mark.parametrize(
    ("symbology", "value", "message"),
    [
        ("ean13", "400638133393X", "takes digits only"),
        ("ean13", "40063813339", "takes 12 digits (the check digit is added) or 13"),
        ("ean13", "40063813339312", "not 14"),
        ("ean13", "4006381333932", "check digit of 400638133393 is 1, not 2"),
        ("upca", "036000291453", "UPC-A check digit of 03600029145 is 2, not 3"),
        ("upca", "0360002914", "UPC-A takes 11 digits"),
        ("code128", "Café", "ASCII characters only"),
        ("qr", "", "needs a value"),
    ],
)
def test_a_value_that_cannot_be_encoded_is_refused_when_saved(
    symbology: str, value: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        code(symbology, value=value)


def test_a_default_that_cannot_be_encoded_is_refused_when_saved() -> None:
    with pytest.raises(ValidationError, match="EAN-13 takes digits only"):
        code("ean13", defaults={"loyalty_id": "none"})
    with pytest.raises(ValidationError, match="the template fails on the defaults"):
        code("qr", value="{{ loyalty_id / 2 }}", defaults={"loyalty_id": "none"})


@pytest.mark.parametrize(
    ("colors", "message"),
    [
        ({"foreground": "#FFFFFF", "background": "#000000"}, "darker than the background"),
        ({"foreground": "#777777", "background": "#999999"}, "contrast of at least 3:1"),
        ({"foreground": "#00000080"}, "foreground must be opaque"),
        ({"background": "#blue"}, "background"),
    ],
)
def test_colours_a_scanner_cannot_read_are_refused(colors: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        code("qr", **colors)


@pytest.mark.parametrize(
    ("symbology", "value"),
    [("ean13", "12345"), ("ean13", "abc"), ("upca", "036000291453"), ("code128", "€"), ("qr", "")],
)
def test_a_recipient_value_that_cannot_be_encoded_makes_the_content_unavailable(
    symbology: str, value: str
) -> None:
    with pytest.raises(ContentUnavailable, match="cannot be drawn"):
        render(code(symbology), {"loyalty_id": value})


def test_a_block_too_small_for_the_code_makes_the_content_unavailable() -> None:
    with pytest.raises(ContentUnavailable, match="too small"):
        render(code("qr", padding=0), {"loyalty_id": "x" * 300}, size=(40, 40))
    with pytest.raises(ContentUnavailable, match="too small"):
        render(code("ean13"), {"loyalty_id": VALUES["ean13"]}, size=(80, 40))


def test_the_text_gives_way_to_the_bars_in_a_low_block() -> None:
    low = render(code("ean13"), {"loyalty_id": VALUES["ean13"]}, size=(300, 30))
    assert scan(low, "ean13") == [("EAN13", VALUES["ean13"])]


def test_the_human_readable_text_is_drawn_under_the_bars() -> None:
    fields = {"loyalty_id": VALUES["ean13"]}
    with_text = render(code("ean13"), fields)
    without = render(code("ean13", text=False), fields)
    assert with_text.size == without.size
    assert with_text.tobytes() != without.tobytes()
    # anti-aliased text adds grey pixels; the bars alone are two colours
    assert len(with_text.getcolors() or []) > 2
    assert len(without.getcolors() or []) == 2


def test_gs1_check_digits() -> None:
    assert gs1_check_digit("400638133393") == "1"
    assert gs1_check_digit("03600029145") == "2"
    assert gs1_check_digit("000000000000") == "0"


def test_png_by_default_so_modules_stay_crisp() -> None:
    assert code("qr").output == "png"


def test_registered() -> None:
    assert registry()["code"] is RENDERER
