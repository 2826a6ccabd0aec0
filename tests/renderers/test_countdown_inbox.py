"""Countdowns that behave in the inbox: played once and never rewound, ending on the expired
state, messages in their own typography, a static text for prefetches, a background image.

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
from renderers.countdown import RENDERER, CountdownParams, static_text
from tests.renderers.pixels import channel_difference, color_box
from tests.renderers.reference import assert_matches_reference
from tests.renderers.test_countdown import (
    MOMENT,
    countdown,
    gif_frames,
    gif_image_descriptors,
    gif_loop,
    request,
    still,
)

ASSET_ID = "sha256:" + "5e" * 32
PAST = MOMENT - dt.timedelta(minutes=1)
ENDED = "This offer has ended"
RED, BLUE = "#CC0000", "#0000CC"
WEEKLY = {"time": "23:59", "weekdays": ["sun"]}


def split_asset() -> Image.Image:
    """A 400×100 image: red on the left half, blue on the right."""
    image = Image.new("RGB", (400, 100), RED)
    ImageDraw.Draw(image).rectangle((200, 0, 399, 99), fill=BLUE)
    return image


def with_asset(**extra: Any) -> RenderRequest:
    """A 600×150 request at MOMENT with the background image supplied."""
    return request(assets={ASSET_ID: split_asset()}, **extra)


def ink_box(image: Image.Image, background: str = "#FFFFFF") -> tuple[int, int, int, int]:
    """The box of everything that is not ``background``."""
    plain = Image.new("RGB", image.size, background)
    box = ImageChops.difference(image.convert("RGB"), plain).getbbox()
    assert box is not None
    return box


# Played once, never rewound.


def test_the_gif_has_no_loop_extension_so_it_stops_on_its_last_frame() -> None:
    body = RENDERER.render_encoded(countdown(), request()).body

    with Image.open(io.BytesIO(body)) as gif:
        assert getattr(gif, "n_frames", 1) == 60
        assert "loop" not in gif.info
    assert b"NETSCAPE2.0" not in body
    # The last frame is 59 seconds on: the time left when it stops.
    last = gif_frames(body)[-1][0]
    expected = still(countdown(), MOMENT + dt.timedelta(seconds=59))
    assert ImageChops.difference(last, expected).getbbox() is None


def test_an_explicit_loop_still_writes_the_extension() -> None:
    body = RENDERER.render_encoded(countdown(loop=0), request()).body

    assert gif_loop(body) == 0
    assert body.count(b"NETSCAPE2.0") == 1


# The expired state: the last frame, in its own typography.


def test_a_deadline_within_the_frames_ends_on_the_expired_text() -> None:
    params = countdown(deadline=MOMENT + dt.timedelta(seconds=5), expired_text=ENDED)

    body = RENDERER.render_encoded(params, request()).body

    frames = gif_frames(body)
    assert [duration for _, duration in frames] == [1000] * 5 + [55000]
    assert gif_loop(body) is None
    ended = still(countdown(deadline=PAST, expired_text=ENDED))
    assert ImageChops.difference(frames[-1][0], ended).getbbox() is None
    one_second = still(countdown(deadline=MOMENT + dt.timedelta(seconds=1)))
    assert ImageChops.difference(frames[-2][0], one_second).getbbox() is None


def test_the_expired_frame_in_other_colours_has_its_own_colour_table() -> None:
    params = countdown(
        deadline=MOMENT + dt.timedelta(seconds=3),
        expired_text=ENDED,
        expired_background="#102030",
        message_color="#FFCC00",
    )

    body = RENDERER.render_encoded(params, request()).body

    tables = [local for _, _, local in gif_image_descriptors(body)]
    assert tables == [False, False, False, True]
    last = gif_frames(body)[-1][0]
    assert last.getpixel((0, 0)) == (0x10, 0x20, 0x30)
    assert color_box(last, "#FFCC00") is not None


def test_the_expired_text_is_set_smaller_than_the_digits_on_one_line() -> None:
    image = still(countdown(deadline=PAST, expired_text=ENDED))

    left, top, right, bottom = ink_box(image)
    assert bottom - top < 30  # one line of 24 px text, not two lines of 56 px digits
    assert 75 - 15 < top < bottom < 75 + 15
    assert 150 < right - left < 576
    assert_matches_reference(image, "countdown_expired_message")


def test_message_typography_is_configurable() -> None:
    default = still(countdown(deadline=PAST, expired_text=ENDED))
    larger = still(countdown(deadline=PAST, expired_text=ENDED, message_font_size=40))
    regular = still(countdown(deadline=PAST, expired_text=ENDED, message_weight="regular"))
    colored = still(countdown(deadline=PAST, expired_text=ENDED, message_color="#CC0000"))

    assert ink_box(larger)[3] - ink_box(larger)[1] > ink_box(default)[3] - ink_box(default)[1]
    assert ImageChops.difference(default, regular).getbbox() is not None
    assert color_box(colored, "#CC0000") is not None
    assert color_box(default, "#CC0000") is None


def test_a_long_message_wraps_within_the_padding() -> None:
    text = "This offer has ended, but the next one starts on Monday morning at nine"
    params = countdown(deadline=PAST, expired_text=text, message_font_size=32)

    left, top, right, bottom = ink_box(still(params))

    assert left >= 12
    assert right <= 600 - 12
    assert bottom - top > 2 * 32  # more than one line
    assert top >= 12
    assert bottom <= 150 - 12


def test_one_line_at_most_shrinks_the_message_to_fit() -> None:
    text = "This offer has ended, but the next one starts on Monday morning at nine"
    params = countdown(deadline=PAST, expired_text=text, message_font_size=32, message_max_lines=1)

    left, top, right, bottom = ink_box(still(params))

    assert bottom - top < 32
    assert left >= 12
    assert right <= 600 - 12


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"message_font_size": 5}, ("message_font_size",)),
        ({"message_font_size": 401}, ("message_font_size",)),
        ({"message_weight": "black"}, ("message_weight",)),
        ({"message_color": "red"}, ("message_color",)),
        ({"message_max_lines": 0}, ("message_max_lines",)),
        ({"message_max_lines": 7}, ("message_max_lines",)),
        ({"static_text": "Ends {when}"}, ("static_text",)),
        ({"static_text": "Ends {time!r}"}, ("static_text",)),
        ({"static_text": "Ends {time:>9}"}, ("static_text",)),
        ({"static_text": "Ends {time"}, ("static_text",)),
        ({"static_text": "Ends {0}"}, ("static_text",)),
        ({"display": "ticker"}, ("display",)),
        ({"background_image": "sha256:abc"}, ("background_image",)),
        ({"background_fit": "stretch"}, ("background_fit",)),
        ({"loop": -1}, ("loop",)),
    ],
)
def test_invalid_params_name_the_field(
    document: dict[str, Any], location: tuple[int | str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        CountdownParams.model_validate({"type": "countdown", "evergreen_seconds": 60, **document})

    assert [error["loc"] for error in caught.value.errors()] == [location]


# A static text instead of the ticking timer (for Apple MPP's prefetch).


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "Ends Sunday 23:59"),
        ({"language": "nl"}, "Eindigt zondag 23:59"),
        ({"language": "de"}, "Endet Sonntag 23:59"),
        ({"language": "fr"}, "Se termine dimanche à 23:59"),
        (
            {"static_text": "Until {weekday} {day} {month} {year}, {time} ({date}) {{sic}}"},
            "Until Sunday 29 November 2026, 23:59 (Nov 29, 2026) {sic}",
        ),
        ({"time_zone": "Europe/London"}, "Ends Sunday 23:59"),
    ],
)
def test_the_static_text_is_formatted_from_the_deadline_in_its_zone(
    extra: dict[str, Any], expected: str
) -> None:
    extra.setdefault("time_zone", "Europe/Amsterdam")
    params = countdown(recurring=WEEKLY, display="static", **extra)

    assert static_text(params, request()) == expected


def test_an_absolute_deadline_is_shown_in_the_configured_zone() -> None:
    deadline = dt.datetime(2026, 12, 24, 18, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    params = countdown(deadline=deadline, display="static", time_zone="America/New_York")
    recipient = countdown(deadline=deadline, display="static", time_zone="recipient")

    assert static_text(params, request()) == "Ends Thursday 12:00"
    tokyo = request(fields={"time_zone": "Asia/Tokyo"})
    assert static_text(recipient, tokyo) == "Ends Friday 02:00"
    assert RENDERER.fields_used(recipient) == frozenset({"time_zone"})


def test_the_static_display_is_one_still_frame_of_the_message() -> None:
    params = countdown(recurring=WEEKLY, time_zone="Europe/Amsterdam", display="static")

    body = RENDERER.render_encoded(params, request()).body

    frames = gif_frames(body)
    assert len(frames) == 1
    assert gif_loop(body) is None
    same_text = still(countdown(deadline=PAST, expired_text="Ends Sunday 23:59"))
    assert ImageChops.difference(frames[0][0], same_text).getbbox() is None
    assert_matches_reference(frames[0][0], "countdown_static")


def test_a_static_display_has_one_cache_key_until_the_deadline_and_one_per_zone() -> None:
    params = countdown(recurring=WEEKLY, time_zone="recipient", display="static")
    paris = {"time_zone": "Europe/Paris"}
    key = RENDERER.cache_key(params, request(fields=paris))

    for later in (dt.timedelta(seconds=1), dt.timedelta(hours=5)):
        assert RENDERER.cache_key(params, request(fields=paris, moment=MOMENT + later)) == key
    # Same deadline (both CET), another zone: the text may read differently.
    berlin = {"time_zone": "Europe/Berlin"}
    assert RENDERER.cache_key(params, request(fields=berlin)) != key


def test_a_static_display_shows_the_expired_state_after_the_deadline() -> None:
    params = countdown(deadline=PAST, display="static", expired_text=ENDED)

    assert (
        ImageChops.difference(
            still(params), still(countdown(deadline=PAST, expired_text=ENDED))
        ).getbbox()
        is None
    )


# A background image.


def test_the_background_image_is_named_as_an_asset() -> None:
    params = countdown(background_image=ASSET_ID, expired_image="sha256:" + "0a" * 32)

    assert RENDERER.assets_used(params) == frozenset({ASSET_ID, "sha256:" + "0a" * 32})


def test_the_timer_is_drawn_over_the_background_image() -> None:
    params = countdown(background_image=ASSET_ID, digit_color="#FFFFFF", label_color="#FFFFFF")

    image = RENDERER.render(params, with_asset())

    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (0xCC, 0, 0)
    assert image.getpixel((599, 149)) == (0, 0, 0xCC)
    plain = still(countdown(digit_color="#FFFFFF", label_color="#FFFFFF", background="#000000"))
    assert color_box(image, "#FFFFFF") == color_box(plain, "#FFFFFF")
    assert_matches_reference(image, "countdown_background_image")


def test_every_frame_over_the_background_image_is_the_still_at_its_second() -> None:
    params = countdown(background_image=ASSET_ID, digit_color="#FFFFFF")

    body = RENDERER.render_encoded(params, with_asset()).body

    frames = gif_frames(body)
    assert len(frames) == 60
    assert gif_loop(body) is None
    for index in (0, 1, 38, 59):
        expected = RENDERER.render(params, with_asset(moment=MOMENT + dt.timedelta(seconds=index)))
        difference = channel_difference(frames[index][0], expected)
        strongest = difference.getextrema()[1]
        assert isinstance(strongest, int)
        assert strongest <= 40, index  # quantised to 256 colours, undithered
    descriptors = gif_image_descriptors(body)
    assert not any(local for _, _, local in descriptors), "one palette for every frame"
    assert all(width * height < 600 * 150 / 4 for width, height, _ in descriptors[1:])
    assert len(body) < 50_000


def test_messages_are_drawn_over_the_background_image() -> None:
    static = countdown(
        recurring=WEEKLY, display="static", background_image=ASSET_ID, message_color="#FFFFFF"
    )
    ended = countdown(deadline=PAST, background_image=ASSET_ID, expired_text=ENDED)

    static_image = RENDERER.render(static, with_asset())
    ended_image = RENDERER.render(ended, with_asset())

    for image in (static_image, ended_image):
        assert image.getpixel((0, 0)) == (0xCC, 0, 0)
        assert image.getpixel((599, 0)) == (0, 0, 0xCC)
    assert color_box(static_image, "#FFFFFF") is not None
    assert color_box(ended_image, "#111111") is not None


def test_without_the_background_image_the_background_colour_shows() -> None:
    params = countdown(background_image=ASSET_ID)

    missing = RENDERER.render_encoded(params, request()).body

    assert missing == RENDERER.render_encoded(countdown(), request()).body


def test_a_contained_background_image_shows_whole_on_the_background_colour() -> None:
    params = countdown(background_image=ASSET_ID, background_fit="contain", background="#FFEEDD")

    image = RENDERER.render(params, with_asset())

    # The 400×100 image scaled to 600×150 fills the block; a 300×150 block letterboxes it.
    assert image.getpixel((0, 0)) == (0xCC, 0, 0)
    narrow = RENDERER.render(params, with_asset(width=300, height=150))
    assert narrow.getpixel((0, 0)) == (0xFF, 0xEE, 0xDD)
    assert narrow.getpixel((0, 149)) == (0xFF, 0xEE, 0xDD)
    assert narrow.getpixel((0, 40)) == (0xCC, 0, 0)
    assert narrow.getpixel((299, 40)) == (0, 0, 0xCC)
