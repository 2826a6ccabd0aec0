"""``"output": "auto"`` for still images (docs/renderers.md, "Output"): WebP when the client
accepts it, else JPEG for a photograph without transparency, else PNG; JPEG and WebP step their
quality down to stay under the block's byte budget (100 KB at 2×, scaled with dpr²)."""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any, ClassVar, Literal

import pytest
from PIL import Image, ImageDraw, JpegImagePlugin

from renderers.banner import RENDERER as BANNER
from renderers.banner import BannerParams
from renderers.base import (
    QUALITY_FLOOR,
    RenderedImage,
    Renderer,
    RendererParams,
    RenderRequest,
    budget_at,
    encode_image,
    has_transparency,
    photographic,
    still_format,
)
from renderers.card import RENDERER as CARD
from renderers.card import CardParams
from tests.sample_images import photo

PHOTO = photo()
PHOTO_ID = "sha256:" + hashlib.sha256(PHOTO.tobytes()).hexdigest()


def flat_picture() -> Image.Image:
    """A flat product picture (a logo-like drawing): few colours, no photograph."""
    image = Image.new("RGB", (400, 300), "#FFFFFF")
    draw = ImageDraw.Draw(image)
    draw.ellipse((50, 20, 350, 280), fill="#2563EB")
    draw.rectangle((150, 100, 250, 200), fill="#F59E0B")
    return image


FLAT = flat_picture()
FLAT_ID = "sha256:" + hashlib.sha256(FLAT.tobytes()).hexdigest()


def photo_card(**extra: Any) -> CardParams:
    """A product card with a photograph, title, prices, badge and button."""
    return CardParams.model_validate(
        {
            "type": "card",
            "image_asset": PHOTO_ID,
            "image_fit": "cover",
            "title": {"text": "Spring jacket"},
            "subtitle": {"text": "Waterproof, breathable and light"},
            "price": 89.95,
            "old_price": 119,
            "badge": {"text": "-25%"},
            "cta": {"text": "Shop now"},
            **extra,
        }
    )


def encoded(
    params: RendererParams, scale: int, *, webp: bool = False, renderer: Any = CARD
) -> RenderedImage:
    request = RenderRequest(
        600 * scale,
        300 * scale,
        scale=scale,
        accepts_webp=webp,
        assets={PHOTO_ID: PHOTO, FLAT_ID: FLAT},
    )
    rendered: RenderedImage = renderer.render_encoded(params, request)
    return rendered


def opened(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_a_photo_card_at_2x_without_webp_is_a_progressive_jpeg_under_100_kb() -> None:
    out = encoded(photo_card(), 2)
    assert out.media_type == "image/jpeg"
    assert out.body.startswith(b"\xff\xd8\xff")
    assert len(out.body) <= 100_000
    image = opened(out.body)
    assert image.size == (1200, 600)
    assert image.info.get("progressive") or image.info.get("progression")
    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    assert JpegImagePlugin.get_sampling(image) == 2  # 4:2:0


def test_a_photo_card_with_webp_accepted_is_webp() -> None:
    out = encoded(photo_card(), 2, webp=True)
    assert out.media_type == "image/webp"
    assert out.body[8:12] == b"WEBP"
    assert len(out.body) <= 100_000


def test_a_flat_banner_stays_png() -> None:
    params = BannerParams.model_validate(
        {
            "type": "banner",
            "gradient": {"from": "#FF0000", "to": "#0000FF", "direction": "diagonal"},
            "lines": [{"text": "Hello Anna, our spring sale is on", "color": "#FFFFFF"}],
        }
    )
    out = encoded(params, 2, renderer=BANNER)
    assert out.media_type == "image/png"
    assert out.body.startswith(b"\x89PNG")


def test_a_card_with_a_flat_picture_stays_png() -> None:
    out = encoded(photo_card(image_asset=FLAT_ID), 2)
    assert out.media_type == "image/png"


def test_a_banner_on_a_photo_is_jpeg() -> None:
    params = BannerParams.model_validate(
        {"type": "banner", "background_image": PHOTO_ID, "lines": [{"text": "Hello Anna"}]}
    )
    assert encoded(params, 2, renderer=BANNER).media_type == "image/jpeg"


@pytest.mark.parametrize("output", ["png", "jpeg", "webp", "gif"])
def test_a_named_format_is_kept_for_a_photo(output: str) -> None:
    out = encoded(photo_card(output=output), 2)
    assert out.media_type == f"image/{output}"


@pytest.mark.parametrize(("scale", "budget"), [(1, 25_000), (2, 100_000), (3, 225_000)])
def test_the_default_budget_scales_with_dpr_squared(scale: int, budget: int) -> None:
    assert budget_at(photo_card().byte_budget, scale) == budget
    out = encoded(photo_card(), scale)
    assert out.media_type == "image/jpeg"
    assert len(out.body) <= budget


@pytest.mark.parametrize("output", ["auto", "jpeg"])
def test_quality_steps_down_to_fit_the_budget_at_3x(output: str) -> None:
    unbudgeted = encoded(photo_card(output=output, byte_budget=10_000_000), 3)
    tight = photo_card(output=output, byte_budget=40_000)  # 90,000 bytes at 3×
    out = encoded(tight, 3)
    assert len(unbudgeted.body) > 90_000
    assert out.media_type == "image/jpeg"
    assert len(out.body) <= 90_000
    assert opened(out.body).size == (1800, 900)


def test_a_webp_steps_down_to_fit_too() -> None:
    unbudgeted = encoded(photo_card(byte_budget=10_000_000), 2, webp=True)
    budget = len(unbudgeted.body) * 3 // 4
    out = encoded(photo_card(byte_budget=budget), 2, webp=True)
    assert out.media_type == "image/webp"
    assert len(out.body) <= budget


def test_an_impossible_budget_still_answers_at_the_floor(caplog: pytest.LogCaptureFixture) -> None:
    floor = encode_image(PHOTO, "jpeg")  # at the default quality, no budget
    with caplog.at_level(logging.INFO, logger="renderers.base"):
        out = encode_image(PHOTO, "jpeg", budget=1_000)
    assert out.media_type == "image/jpeg"
    assert 1_000 < len(out.body) < len(floor.body)
    assert "over its budget of 1000 bytes" in caplog.text
    assert QUALITY_FLOOR == 45


class Cutout(RendererParams):
    type: Literal["cutout"] = "cutout"


class CutoutRenderer(Renderer[Cutout]):
    """A photograph with a transparent hole: an uploaded picture, drawn with alpha."""

    type: ClassVar[str] = "cutout"
    params_model = Cutout

    def assets_used(self, params: Cutout) -> frozenset[str]:
        return frozenset({PHOTO_ID})

    def render(self, params: Cutout, request: RenderRequest) -> Image.Image:
        image = PHOTO.resize((request.width, request.height)).convert("RGBA")
        ImageDraw.Draw(image).ellipse((10, 10, 100, 100), fill=(0, 0, 0, 0))
        return image


def test_a_transparent_photo_stays_png() -> None:
    out = encoded(Cutout(), 2, renderer=CutoutRenderer())
    assert out.media_type == "image/png"
    assert opened(out.body).mode == "RGBA"


def test_only_pictures_are_looked_at() -> None:
    """A drawn image (no uploaded picture) is PNG without a look at its pixels."""
    assert photographic(PHOTO)
    assert not photographic(FLAT)
    assert still_format(PHOTO, "auto", accepts_webp=False, drawn=True) == "png"
    assert still_format(PHOTO, "auto", accepts_webp=False, drawn=False) == "jpeg"


def test_transparency_is_any_pixel_not_fully_opaque() -> None:
    opaque = PHOTO.convert("RGBA")
    holed = opaque.copy()
    holed.putpixel((0, 0), (0, 0, 0, 254))
    keyed = FLAT.convert("P")
    keyed.info["transparency"] = keyed.getpixel((0, 0))
    assert not has_transparency(PHOTO)
    assert not has_transparency(opaque)
    assert has_transparency(holed)
    assert has_transparency(keyed)
    assert still_format(opaque.convert("RGB"), "auto", False, drawn=False) == "jpeg"
    assert still_format(opaque, "auto", False, drawn=False) == "jpeg"  # opaque alpha: no matter
    assert still_format(holed, "auto", False, drawn=False) == "png"
