"""PNG of drawn images: the exact pixels back, smaller than Pillow's for a drawn banner, and
used only for images without an uploaded picture."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageDraw

from models.campaigns.specs import BlockSpec
from renderers.base import PNG_COMPRESS_LEVEL, RenderRequest, encode_image
from renderers.png import SIGNATURE, drawn_png
from renderers.registry import registry
from server.demo.data import DEMO_BLOCK
from tests.renderers.test_card import ASSET, FIELDS, card, product_image


def drawn(mode: str) -> Image.Image:
    """Text, a gradient-like ramp and a transparent corner, in ``mode``."""
    image = Image.new("RGBA", (181, 67), (20, 40, 200, 255))
    draw = ImageDraw.Draw(image)
    for x in range(181):
        draw.line((x, 0, x, 10), fill=(x, 255 - x, 90, 255))
    draw.text((8, 20), "Anna, your trip awaits", fill=(255, 255, 255, 255))
    draw.rectangle((150, 40, 180, 66), fill=(0, 0, 0, 0))
    return image if mode == "RGBA" else image.convert(mode)


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_every_pixel_comes_back(mode: str) -> None:
    image = drawn(mode)
    body = drawn_png(image)

    assert body.startswith(SIGNATURE)
    back = decoded(body)
    assert back.size == image.size
    expected = image.convert(back.mode)
    assert ImageChops.difference(back, expected).getbbox() is None


def test_transparency_is_kept() -> None:
    back = decoded(drawn_png(drawn("RGBA")))

    assert back.mode == "RGBA"
    assert back.getpixel((170, 60)) == (0, 0, 0, 0)
    assert back.getpixel((5, 30)) == (20, 40, 200, 255)


@pytest.mark.parametrize("scale", [1, 2])
def test_the_demo_banner_is_smaller_than_pillows_encoding(scale: int) -> None:
    spec = BlockSpec.model_validate(DEMO_BLOCK)
    variant = spec.variant("city-trip")
    assert variant is not None
    request = RenderRequest(spec.width * scale, spec.height * scale, {"first_name": "Annabelle"})
    image = registry()["banner"].render(variant.content, request)
    ours = encode_image(image, "png", drawn=True).body
    pillows = encode_image(image, "png").body

    assert len(ours) < len(pillows)
    assert ImageChops.difference(decoded(ours), decoded(pillows)).getbbox() is None


def test_a_render_with_an_uploaded_picture_keeps_pillows_encoder() -> None:
    renderer = registry()["card"]
    with_picture, without = card(), card(image_asset=None)
    request = RenderRequest(600, 200, FIELDS, assets={ASSET: product_image()})

    assert not renderer.drawn(with_picture)
    assert renderer.drawn(without)
    image = renderer.render(with_picture, request)
    encoded = renderer.render_encoded(with_picture, request).body
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    assert encoded == buffer.getvalue()
    assert renderer.render_encoded(without, request).body == drawn_png(
        renderer.render(without, request)
    )
