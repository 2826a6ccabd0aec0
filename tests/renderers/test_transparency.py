"""Background colours with alpha (``#RRGGBBAA``) give real transparency (docs/renderers.md,
"Output"): the banner, card and progress bar draw on an RGBA canvas, PNG and WebP keep the
alpha, and ``auto`` never picks JPEG for them; opaque backgrounds stay RGB."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from PIL import Image

from renderers.base import RenderedImage, RenderRequest
from renderers.registry import renderer_for
from tests.factories import banner, decode_image
from tests.sample_images import photo

TEXT = "#FFFFFF"
PHOTO = photo()
PHOTO_ID = "sha256:" + hashlib.sha256(PHOTO.tobytes()).hexdigest()


def encoded(document: dict[str, Any], *, webp: bool = False, **request: Any) -> RenderedImage:
    """Render and encode content params at 600×200, as the image route does."""
    renderer = renderer_for(document["type"])
    params = renderer.params_model.model_validate(document)
    return renderer.render_encoded(
        params, RenderRequest(width=600, height=200, accepts_webp=webp, **request)
    )


def transparent_banner(background: str = "#00000000", **extra: Any) -> dict[str, Any]:
    """A banner of one large white line on ``background``."""
    return {
        **banner("HHHH", background=background, **extra),
        "lines": [{"text": "HHHH", "font_size": 120, "color": TEXT, "weight": "bold"}],
    }


def alpha_values(image: Image.Image) -> list[int]:
    """How many pixels have each alpha, 0 to 255."""
    return image.getchannel("A").histogram()


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """Every pixel of an RGBA image, row by row."""
    return [pixel for pixel in image.get_flattened_data() if isinstance(pixel, tuple)]


def test_transparent_banner_is_rgba_png_with_opaque_glyphs() -> None:
    rendered = encoded(transparent_banner())
    image = decode_image(rendered.body)
    assert rendered.media_type == "image/png"
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (0, 0, 0, 0)
    glyphs = [pixel for pixel in pixels(image) if pixel[3] == 255]
    assert len(glyphs) > 1_000
    assert {pixel[:3] for pixel in glyphs} == {(255, 255, 255)}


def test_text_edges_on_transparency_keep_the_text_colour() -> None:
    """No dark fringe: a partly covered pixel is the text's colour at partial alpha, not the
    text blended with the transparent background's black."""
    image = decode_image(encoded(transparent_banner()).body)
    edge = [pixel for pixel in pixels(image) if 0 < pixel[3] < 255]
    assert edge
    assert {pixel[:3] for pixel in edge} == {(255, 255, 255)}


def test_webp_keeps_the_alpha() -> None:
    rendered = encoded(transparent_banner(), webp=True)
    image = decode_image(rendered.body)
    assert rendered.media_type == "image/webp"
    assert image.mode == "RGBA"
    assert pixels(image)[0][3] == 0
    assert alpha_values(image)[255] > 1_000


def test_semi_transparent_background_keeps_its_alpha() -> None:
    image = decode_image(encoded(transparent_banner("#ffffff80")).body)
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (255, 255, 255, 128)


def test_auto_keeps_png_for_a_transparent_banner_around_a_photograph() -> None:
    """``auto`` without WebP serves a photograph as JPEG, but not with transparent pixels: a
    contained photo on a transparent background stays PNG, its surround transparent."""
    document = transparent_banner(background_image=PHOTO_ID, background_fit="contain")
    rendered = encoded(document, assets={PHOTO_ID: PHOTO})
    image = decode_image(rendered.body)
    assert rendered.media_type == "image/png"
    assert image.mode == "RGBA"
    assert alpha_values(image)[0] > 0


@pytest.mark.parametrize(
    "document",
    [
        {"type": "card", "background": "#00000000", "title": {"text": "Spring jacket"}},
        {"type": "progress", "background": "#00000000", "value": 40, "goal": 100},
    ],
    ids=["card", "progress"],
)
def test_card_and_progress_are_transparent_too(document: dict[str, Any]) -> None:
    rendered = encoded(document)
    image = decode_image(rendered.body)
    assert rendered.media_type == "image/png"
    assert image.getpixel((0, 0)) == (0, 0, 0, 0)
    assert alpha_values(image)[255] > 0


@pytest.mark.parametrize("background", ["#0B7A75", "#0B7A75FF"])
def test_opaque_backgrounds_stay_rgb(background: str) -> None:
    image = decode_image(encoded(transparent_banner(background)).body)
    assert image.mode == "RGB"


def test_a_countdown_gif_stays_opaque() -> None:
    """GIF has 1-bit transparency only, and the digits' anti-aliasing ramps towards the
    background colour: a countdown drops the background's alpha (its colour stays)."""
    document = {
        "type": "countdown",
        "background": "#11223300",
        "deadline": "2030-01-01T00:00:00+00:00",
    }
    moment = dt.datetime(2029, 12, 31, tzinfo=dt.UTC)
    rendered = encoded(document, moment=moment)
    image = decode_image(rendered.body)
    assert rendered.media_type == "image/gif"
    assert "transparency" not in image.info
    assert image.convert("RGB").getpixel((0, 0)) == (0x11, 0x22, 0x33)
