"""The countdown's expired image: an uploaded asset shown, as one still frame, once time is up.

Reference images live in ``reference/``; rebuild them with ``BLANCO_REGEN_REFERENCES=1``.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw
from pydantic import ValidationError

from renderers.base import RenderRequest
from renderers.countdown import RENDERER, CountdownParams
from tests.renderers.pixels import color_box, color_count
from tests.renderers.reference import assert_matches_reference
from tests.renderers.test_countdown import MOMENT, countdown, gif_frames, gif_loop, request, still

ASSET_ID = "sha256:" + "3f" * 32
OTHER_ASSET_ID = "sha256:" + "0a" * 32
PAST = MOMENT - dt.timedelta(minutes=1)
RED, BLUE, GREEN, YELLOW = "#CC0000", "#0000CC", "#00AA00", "#EEEE00"
LETTERBOX = "#FFEEDD"
TEXT = "This offer has ended"


def banded_asset() -> Image.Image:
    """A 200×200 image: green top, red | blue middle (rows 60–139), yellow bottom.

    Covering a 4:1 block keeps only rows 75–124, so the crop shows red and blue alone.
    """
    image = Image.new("RGB", (200, 200), GREEN)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 60, 99, 139), fill=RED)
    draw.rectangle((100, 60, 199, 139), fill=BLUE)
    draw.rectangle((0, 140, 199, 199), fill=YELLOW)
    return image


def expired(**extra: Any) -> CountdownParams:
    """A countdown whose deadline passed a minute before MOMENT, showing the expired image."""
    extra.setdefault("expired_image", ASSET_ID)
    return countdown(deadline=PAST, **extra)


def with_asset(image: Image.Image | None = None, **extra: Any) -> RenderRequest:
    """A 600×150 request at MOMENT with the decoded asset the server would supply."""
    return request(assets={ASSET_ID: banded_asset() if image is None else image}, **extra)


def rgb(color: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as an RGB tuple."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def corners(image: Image.Image) -> list[Any]:
    """The colours of the four corner pixels, clockwise from the top left."""
    rgb_image = image.convert("RGB")
    right, bottom = rgb_image.width - 1, rgb_image.height - 1
    return [rgb_image.getpixel(xy) for xy in ((0, 0), (right, 0), (right, bottom), (0, bottom))]


def near(pixel: Any, color: str, tolerance: int = 6) -> bool:
    """``pixel`` is within ``tolerance`` per channel of ``color`` (GIF quantising may shift it)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb(color), strict=True))


def test_the_expired_image_is_named_as_an_asset() -> None:
    assert RENDERER.assets_used(expired()) == frozenset({ASSET_ID})
    assert RENDERER.assets_used(countdown(deadline=PAST)) == frozenset()


def test_the_expired_image_covers_the_block_in_one_still_gif_frame() -> None:
    body = RENDERER.render_encoded(expired(), with_asset())

    frames = gif_frames(body.body)

    assert body.media_type == "image/gif"
    assert len(frames) == 1
    assert gif_loop(body.body) is None
    frame = frames[0][0]
    assert frame.size == (600, 150)
    top_left, top_right, bottom_right, bottom_left = corners(frame)
    assert near(top_left, RED)
    assert near(bottom_left, RED)
    assert near(top_right, BLUE)
    assert near(bottom_right, BLUE)
    # Covering crops the green and yellow bands away.
    shown = [color for _, color in frame.getcolors(1 << 16) or []]
    assert shown
    assert not any(near(color, GREEN, 40) or near(color, YELLOW, 40) for color in shown)


def test_png_output_keeps_the_asset_colours_exactly() -> None:
    rendered = RENDERER.render_encoded(expired(output="png"), with_asset())

    with Image.open(io.BytesIO(rendered.body)) as png:
        assert png.format == "PNG"
        assert getattr(png, "n_frames", 1) == 1
        image = png.convert("RGB")
    assert corners(image) == [rgb(RED), rgb(BLUE), rgb(BLUE), rgb(RED)]
    assert color_count(image, GREEN) == color_count(image, YELLOW) == 0
    expected = RENDERER.render(expired(output="png"), with_asset()).convert("RGB")
    assert ImageChops.difference(image, expected).getbbox() is None


def test_contain_shows_the_whole_image_on_the_expired_background() -> None:
    params = expired(expired_image_fit="contain", expired_background=LETTERBOX)

    image = RENDERER.render(params, with_asset())

    assert corners(image) == [rgb(LETTERBOX)] * 4
    # The 200×200 asset scaled to 150×150, centred: every band is there, in its place (the
    # bands' 45-pixel edges blend a little with their neighbours when resampled).
    green, yellow = color_box(image, GREEN), color_box(image, YELLOW)
    assert green is not None
    assert yellow is not None
    assert green[:3] == (225, 0, 375)
    assert 40 <= green[3] <= 45
    assert yellow[0] == 225
    assert 105 <= yellow[1] <= 110
    assert yellow[2:] == (375, 150)
    assert image.convert("RGB").getpixel((240, 75)) == rgb(RED)
    assert image.convert("RGB").getpixel((360, 75)) == rgb(BLUE)
    assert_matches_reference(image, "countdown_expired_image_contain")


def test_the_expired_text_is_drawn_over_the_image() -> None:
    params = expired(expired_text=TEXT, digit_color="#FFFFFF")

    image = RENDERER.render(params, with_asset())
    plain = RENDERER.render(expired(), with_asset())

    assert corners(image) == [rgb(RED), rgb(BLUE), rgb(BLUE), rgb(RED)]
    text_box = color_box(image, "#FFFFFF")
    assert text_box is not None
    left, top, right, bottom = text_box
    assert left < 300 < right
    assert top < 75 < bottom
    # Only the text's box differs from the image without text.
    changed = ImageChops.difference(image, plain).getbbox()
    assert changed is not None
    assert left - 2 <= changed[0]
    assert changed[2] <= right + 2
    assert top - 2 <= changed[1]
    assert changed[3] <= bottom + 2
    assert_matches_reference(image, "countdown_expired_image_text")


def test_the_expired_image_is_shown_at_the_device_pixel_ratio() -> None:
    image = RENDERER.render(expired(), with_asset(width=1200, height=300, scale=2))

    assert image.size == (1200, 300)
    assert corners(image) == [rgb(RED), rgb(BLUE), rgb(BLUE), rgb(RED)]


def test_transparent_parts_of_the_image_show_the_expired_background() -> None:
    transparent = Image.new("RGBA", (40, 10), (0, 0, 0, 0))
    transparent.paste((0, 0, 204, 255), (10, 0, 30, 10))

    image = RENDERER.render(expired(expired_background=LETTERBOX), with_asset(transparent))

    assert image.convert("RGB").getpixel((0, 75)) == rgb(LETTERBOX)
    assert image.convert("RGB").getpixel((300, 75)) == rgb(BLUE)


@pytest.mark.parametrize(
    "assets",
    [
        pytest.param({}, id="missing"),
        pytest.param({OTHER_ASSET_ID: banded_asset()}, id="another asset"),
        pytest.param({ASSET_ID: Image.new("RGB", (0, 0))}, id="empty image"),
    ],
)
def test_without_a_usable_image_the_expired_text_is_shown(assets: dict[str, Image.Image]) -> None:
    params = expired(expired_text=TEXT, expired_background=LETTERBOX)
    text_only = countdown(deadline=PAST, expired_text=TEXT, expired_background=LETTERBOX)

    body = RENDERER.render_encoded(params, request(assets=assets)).body

    frames = gif_frames(body)
    assert len(frames) == 1
    assert gif_loop(body) is None
    assert corners(frames[0][0]) == [rgb(LETTERBOX)] * 4
    assert ImageChops.difference(frames[0][0], still(text_only)).getbbox() is None


def test_without_a_usable_image_or_text_the_zeros_are_shown() -> None:
    body = RENDERER.render_encoded(expired(), request()).body

    frames = gif_frames(body)
    assert len(frames) == 1
    zeros = still(countdown(deadline=MOMENT))
    assert ImageChops.difference(frames[0][0], zeros).getbbox() is None


def test_before_the_deadline_the_countdown_is_unchanged() -> None:
    params = countdown(expired_image=ASSET_ID, expired_text=TEXT)

    with_image = RENDERER.render_encoded(params, with_asset()).body
    without = RENDERER.render_encoded(countdown(expired_text=TEXT), request()).body

    assert with_image == without
    assert len(gif_frames(with_image)) == 60


def test_a_countdown_reaching_zero_in_its_frames_ends_on_the_expired_image() -> None:
    params = countdown(deadline=MOMENT + dt.timedelta(seconds=5), expired_image=ASSET_ID)

    body = RENDERER.render_encoded(params, with_asset()).body

    frames = gif_frames(body)
    assert [duration for _, duration in frames] == [1000] * 5 + [55000]
    assert gif_loop(body) is None
    assert body.count(b"NETSCAPE2.0") == 0
    last = frames[-1][0]
    top_left, top_right, bottom_right, bottom_left = corners(last)
    assert near(top_left, RED)
    assert near(bottom_left, RED)
    assert near(top_right, BLUE)
    assert near(bottom_right, BLUE)
    # The frame before it is the timer's last running second, on the white background.
    assert frames[-2][0].getpixel((0, 0)) == (255, 255, 255)


def test_an_expired_countdown_has_one_cache_key_for_every_later_second() -> None:
    params = expired()
    key = RENDERER.cache_key(params, with_asset())

    for later in (dt.timedelta(seconds=1), dt.timedelta(hours=5), dt.timedelta(days=400)):
        assert RENDERER.cache_key(params, with_asset(moment=MOMENT + later)) == key
    assert RENDERER.cache_key(params, with_asset(width=1200, height=300, scale=2)) != key
    assert RENDERER.cache_key(expired(expired_image_fit="contain"), with_asset()) != key
    assert RENDERER.cache_key(expired(expired_image=OTHER_ASSET_ID), with_asset()) != key
    assert RENDERER.cache_key(countdown(deadline=PAST), with_asset()) != key


def test_the_last_running_second_is_keyed_apart_from_the_expired_state() -> None:
    params = countdown(deadline=MOMENT + dt.timedelta(seconds=2), expired_image=ASSET_ID)

    def key_at(seconds: int) -> str:
        return RENDERER.cache_key(params, request(moment=MOMENT + dt.timedelta(seconds=seconds)))

    running = [key_at(0), key_at(1)]
    expired_keys = {key_at(2), key_at(3), key_at(60)}

    assert len(expired_keys) == 1
    assert len({*running, *expired_keys}) == 3


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"expired_image": "sha256:abc"}, "expired_image"),
        ({"expired_image": "md5:" + "0" * 32}, "expired_image"),
        ({"expired_image": ASSET_ID, "expired_image_fit": "stretch"}, "expired_image_fit"),
    ],
)
def test_invalid_expired_image_params_name_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CountdownParams.model_validate({"type": "countdown", "evergreen_seconds": 60, **document})

    assert [error["loc"] for error in caught.value.errors()] == [(field,)]
