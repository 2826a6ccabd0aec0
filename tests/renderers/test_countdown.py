"""The countdown renderer: deadlines, shared cache keys, the animated GIF and its first frame.

Reference images live in ``reference/``; rebuild them with ``BLANCO_REGEN_REFERENCES=1``.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageSequence
from pydantic import ValidationError

from renderers.base import RenderRequest
from renderers.countdown import (
    RENDERER,
    CountdownParams,
    DeadlineUnavailable,
    resolve_deadline,
)
from renderers.registry import renderer_for
from tests.renderers.reference import assert_matches_reference

MOMENT = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
DEADLINE = MOMENT + dt.timedelta(days=2, hours=3, minutes=4, seconds=37)


def countdown(**extra: Any) -> CountdownParams:
    """Countdown params, to DEADLINE unless another deadline mode is given."""
    if not {"deadline_field", "evergreen_seconds", "recurring"} & extra.keys():
        extra.setdefault("deadline", DEADLINE)
    return CountdownParams.model_validate({"type": "countdown", **extra})


def request(**extra: Any) -> RenderRequest:
    """A 600×150 request at MOMENT."""
    extra.setdefault("moment", MOMENT)
    return RenderRequest(width=extra.pop("width", 600), height=extra.pop("height", 150), **extra)


def gif_frames(body: bytes) -> list[tuple[Image.Image, int]]:
    """Every frame of a GIF, composed as a viewer shows it, with its duration in ms."""
    with Image.open(io.BytesIO(body)) as gif:
        assert gif.format == "GIF"
        return [
            (frame.convert("RGB"), int(frame.info.get("duration", 0)))
            for frame in ImageSequence.Iterator(gif)
        ]


def gif_loop(body: bytes) -> int | None:
    """The GIF's NETSCAPE repeat count (0: forever), None without one (plays once)."""
    with Image.open(io.BytesIO(body)) as gif:
        loop = gif.info.get("loop")
        return None if loop is None else int(loop)


def still(params: CountdownParams, at: dt.datetime = MOMENT, **extra: Any) -> Image.Image:
    """The first frame at ``at`` as RGB."""
    return RENDERER.render(params, request(moment=at, **extra)).convert("RGB")


def test_the_registry_finds_the_countdown() -> None:
    assert renderer_for("countdown") is RENDERER


def test_first_frame_matches_the_reference() -> None:
    image = RENDERER.render(countdown(), request())

    assert image.size == (600, 150)
    assert_matches_reference(image, "countdown_first_frame")


def test_first_frame_of_the_gif_is_the_still() -> None:
    params = countdown()

    frames = gif_frames(RENDERER.render_encoded(params, request()).body)

    assert ImageChops.difference(frames[0][0], still(params)).getbbox() is None


def test_styled_dutch_first_frame_matches_the_reference() -> None:
    params = countdown(
        language="nl",
        background="#102030",
        digit_color="#FFCC00",
        label_color="#AABBCC",
        separator="",
        units=["hours", "minutes", "seconds"],
    )

    assert_matches_reference(still(params), "countdown_styled_nl")


def test_expired_deadline_shows_the_expired_text_in_one_frame() -> None:
    params = countdown(
        deadline=MOMENT - dt.timedelta(minutes=1),
        expired_text="This offer has ended",
        expired_background="#FFEEDD",
    )

    body = RENDERER.render_encoded(params, request()).body

    frames = gif_frames(body)
    assert len(frames) == 1
    assert gif_loop(body) is None
    assert ImageChops.difference(frames[0][0], still(params)).getbbox() is None
    assert frames[0][0].getpixel((0, 0)) == (0xFF, 0xEE, 0xDD)
    assert_matches_reference(frames[0][0], "countdown_expired")


def test_expired_deadline_without_text_shows_zeros_in_one_frame() -> None:
    params = countdown(deadline=MOMENT - dt.timedelta(minutes=1))

    frames = gif_frames(RENDERER.render_encoded(params, request()).body)

    assert len(frames) == 1
    zeros = still(countdown(deadline=MOMENT))
    assert ImageChops.difference(frames[0][0], zeros).getbbox() is None


def test_a_frame_per_second_played_once_by_default() -> None:
    body = RENDERER.render_encoded(countdown(), request()).body

    frames = gif_frames(body)
    assert len(frames) == 60
    assert all(duration == 1000 for _, duration in frames)
    # No NETSCAPE loop extension: clients play the frames once and stay on the last one.
    assert gif_loop(body) is None
    assert b"NETSCAPE2.0" not in body


@pytest.mark.parametrize(("loop", "repeats"), [(0, 0), (3, 2), (1, None), (None, None)])
def test_loop_counts_plays(loop: int, repeats: int | None) -> None:
    body = RENDERER.render_encoded(countdown(frames=20, loop=loop), request()).body

    assert len(gif_frames(body)) == 20
    assert gif_loop(body) == repeats


def test_each_frame_shows_the_time_left_at_its_second() -> None:
    params = countdown()  # 37 s past the minute, so the minutes change at frame 38

    frames = gif_frames(RENDERER.render_encoded(params, request()).body)

    for index in (1, 9, 10, 37, 38, 59):
        expected = still(params, MOMENT + dt.timedelta(seconds=index))
        assert ImageChops.difference(frames[index][0], expected).getbbox() is None, index
    for (previous, _), (current, _) in itertools.pairwise(frames):
        assert ImageChops.difference(previous, current).getbbox() is not None


def test_the_countdown_stops_at_zero_and_plays_once() -> None:
    params = countdown(deadline=MOMENT + dt.timedelta(seconds=5))

    body = RENDERER.render_encoded(params, request()).body

    frames = gif_frames(body)
    assert [duration for _, duration in frames] == [1000] * 5 + [55000]
    assert gif_loop(body) is None
    zeros = still(countdown(deadline=MOMENT))
    assert ImageChops.difference(frames[-1][0], zeros).getbbox() is None


def test_sixty_frames_at_600x150_stay_small() -> None:
    body = RENDERER.render_encoded(countdown(), request()).body

    assert len(body) < 200_000


def test_device_pixel_ratio_two_doubles_everything() -> None:
    params = countdown()

    single = still(params)
    double = still(params, width=1200, height=300, scale=2)

    assert double.size == (1200, 300)
    background = Image.new("RGB", single.size, "#FFFFFF")
    single_box = ImageChops.difference(single, background).getbbox()
    double_box = ImageChops.difference(double, background.resize(double.size)).getbbox()
    assert single_box is not None
    assert double_box is not None
    for one, two in zip(single_box, double_box, strict=True):
        assert abs(two - 2 * one) <= 4


def test_dutch_labels_replace_the_english_ones() -> None:
    english = still(countdown())

    dutch = still(countdown(language="nl"))

    assert ImageChops.difference(english, dutch).getbbox() is not None
    spelled_out = {"days": "dagen", "hours": "uren", "minutes": "minuten", "seconds": "seconden"}
    assert ImageChops.difference(dutch, still(countdown(labels=spelled_out))).getbbox() is None


def test_labels_can_be_overridden() -> None:
    default = still(countdown(language="nl"))

    overridden = still(countdown(language="nl", labels={"days": "dgn"}))

    assert ImageChops.difference(default, overridden).getbbox() is not None


def test_deadline_from_a_profile_field_in_the_recipient_time_zone() -> None:
    params = countdown(deadline_field="offer_ends", time_zone="recipient")
    fields = {"offer_ends": "2026-11-23T12:00:00", "time_zone": "Europe/Amsterdam"}

    deadline = resolve_deadline(params, request(fields=fields))

    assert deadline == dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
    absolute = still(countdown(deadline=deadline))
    assert ImageChops.difference(still(params, fields=fields), absolute).getbbox() is None


@pytest.mark.parametrize(
    ("params", "fields", "expected_utc"),
    [
        ({"time_zone": "America/New_York"}, {"offer_ends": "2026-11-23T12:00:00"}, 17),
        ({"time_zone": "recipient"}, {"offer_ends": "2026-11-23T12:00:00"}, 12),
        (
            {"time_zone": "recipient", "fallback_time_zone": "Europe/Berlin"},
            {"offer_ends": "2026-11-23T12:00:00", "time_zone": "Not/AZone"},
            11,
        ),
        ({"time_zone": "Asia/Tokyo"}, {"offer_ends": "2026-11-23T12:00:00+01:00"}, 11),
    ],
)
def test_naive_profile_deadlines_take_the_configured_zone(
    params: dict[str, Any], fields: dict[str, Any], expected_utc: int
) -> None:
    deadline = resolve_deadline(
        countdown(deadline_field="offer_ends", **params), request(fields=fields)
    )

    assert deadline == dt.datetime(2026, 11, 23, expected_utc, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", [None, "", "next tuesday", True, [2026]])
def test_an_unreadable_profile_deadline_is_unavailable(value: Any) -> None:
    params = countdown(deadline_field="offer_ends")

    with pytest.raises(DeadlineUnavailable, match="offer_ends"):
        RENDERER.render_encoded(params, request(fields={"offer_ends": value}))


def test_evergreen_deadline_counts_from_the_first_open() -> None:
    params = countdown(evergreen_seconds=3600)
    first_open = MOMENT - dt.timedelta(minutes=10)

    deadline = resolve_deadline(params, request(first_open=first_open))

    assert deadline == first_open + dt.timedelta(hours=1)
    absolute = still(countdown(deadline=deadline))
    assert ImageChops.difference(still(params, first_open=first_open), absolute).getbbox() is None


def test_evergreen_deadline_without_a_first_open_counts_from_the_moment() -> None:
    params = countdown(evergreen_seconds=90)

    assert resolve_deadline(params, request()) == MOMENT + dt.timedelta(seconds=90)


def test_the_moment_is_truncated_to_the_second() -> None:
    now = MOMENT + dt.timedelta(seconds=7, microseconds=999_999)

    assert RENDERER.moment(countdown(), now) == MOMENT + dt.timedelta(seconds=7)


def test_recipients_with_the_same_deadline_share_one_cache_key() -> None:
    params = countdown(deadline_field="offer_ends", time_zone="recipient")
    anna = {"first_name": "Anna", "offer_ends": "2026-11-23T12:00:00", "time_zone": "Europe/Paris"}
    bram = {"first_name": "Bram", "offer_ends": "2026-11-23T11:00:00Z", "city": "Utrecht"}

    anna_key = RENDERER.cache_key(params, request(fields=anna))
    bram_key = RENDERER.cache_key(params, request(fields=bram))

    assert anna_key == bram_key


def test_cache_keys_differ_per_deadline_second_and_size() -> None:
    params = countdown(deadline_field="offer_ends")
    fields = {"offer_ends": "2026-11-23T12:00:00Z"}
    key = RENDERER.cache_key(params, request(fields=fields))

    later_deadline = {"offer_ends": "2026-11-23T12:00:01Z"}
    next_second = MOMENT + dt.timedelta(seconds=1)
    assert RENDERER.cache_key(params, request(fields=later_deadline)) != key
    assert RENDERER.cache_key(params, request(fields=fields, moment=next_second)) != key
    assert RENDERER.cache_key(params, request(fields=fields, width=1200, scale=2)) != key
    assert (
        RENDERER.cache_key(
            countdown(deadline_field="offer_ends", frames=30), request(fields=fields)
        )
        != key
    )


def test_png_output_is_the_first_frame() -> None:
    params = countdown(output="png")

    rendered = RENDERER.render_encoded(params, request())

    assert rendered.media_type == "image/png"
    with Image.open(io.BytesIO(rendered.body)) as png:
        assert png.format == "PNG"
        assert ImageChops.difference(png.convert("RGB"), still(params)).getbbox() is None


def test_a_too_small_image_still_renders() -> None:
    body = RENDERER.render_encoded(countdown(), request(width=40, height=12)).body

    assert gif_frames(body)[0][0].size == (40, 12)


def _error_locations(document: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        CountdownParams.model_validate({"type": "countdown", **document})
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("document", "location", "message"),
    [
        (
            {},
            (),
            "exactly one of deadline, deadline_field, evergreen_seconds or recurring (got none)",
        ),
        (
            {"deadline": DEADLINE.isoformat(), "evergreen_seconds": 60},
            (),
            "got deadline and evergreen_seconds",
        ),
        ({"deadline": "2026-12-24T18:00:00"}, ("deadline",), "timezone"),
        ({"evergreen_seconds": 60, "time_zone": "Mars/Olympus"}, ("time_zone",), "Mars/Olympus"),
        ({"evergreen_seconds": 60, "frames": 0}, ("frames",), "greater than or equal to 1"),
        ({"evergreen_seconds": 60, "frames": 121}, ("frames",), "less than or equal to 120"),
        ({"evergreen_seconds": 60, "units": []}, ("units",), "at least 1"),
        ({"evergreen_seconds": 60, "units": ["hours", "hours"]}, ("units",), "repeat"),
        ({"evergreen_seconds": 60, "units": ["weeks"]}, ("units", 0), "days"),
        ({"evergreen_seconds": 60, "digit_color": "red"}, ("digit_color",), "pattern"),
        ({"deadline_field": "offer ends"}, ("deadline_field",), "field name"),
    ],
)
def test_invalid_params_name_the_field(
    document: dict[str, Any], location: tuple[int | str, ...], message: str
) -> None:
    errors = _error_locations(document)

    assert any(loc == location and message in msg for loc, msg in errors), errors


def gif_image_descriptors(body: bytes) -> list[tuple[int, int, bool]]:
    """(width, height, has a local colour table) of every frame of a GIF, read from its blocks."""
    assert body[:6] in (b"GIF87a", b"GIF89a")
    position = 13
    if body[10] & 0x80:  # the global colour table
        position += 3 * 2 ** ((body[10] & 0x07) + 1)
    found: list[tuple[int, int, bool]] = []

    def skip_sub_blocks(at: int) -> int:
        while body[at]:
            at += body[at] + 1
        return at + 1

    while body[position] != 0x3B:
        if body[position] == 0x21:  # an extension: label, then sub-blocks
            position = skip_sub_blocks(position + 2)
        elif body[position] == 0x2C:  # an image descriptor
            width = int.from_bytes(body[position + 5 : position + 7], "little")
            height = int.from_bytes(body[position + 7 : position + 9], "little")
            packed = body[position + 9]
            local = bool(packed & 0x80)
            found.append((width, height, local))
            position += 10
            if local:
                position += 3 * 2 ** ((packed & 0x07) + 1)
            position = skip_sub_blocks(position + 1)  # the LZW code size, then the data
        else:
            raise AssertionError(f"unexpected GIF block {body[position]:#x}")
    return found


def test_frames_share_one_palette_and_redraw_only_what_changed() -> None:
    body = RENDERER.render_encoded(countdown(frames=5), request()).body
    assert body[10] & 0x80, "one global palette"
    frames = gif_image_descriptors(body)
    assert len(frames) == 5
    assert not any(local for _, _, local in frames), "no frame has a palette of its own"
    assert frames[0][:2] == (600, 150)
    # each later second changes only the seconds' digits: a small rectangle, not the banner
    assert all(width * height < 600 * 150 / 4 for width, height, _ in frames[1:])


@pytest.mark.parametrize("language", ["en", "nl", "de", "fr"])
def test_every_language_has_its_own_labels(language: str) -> None:
    others = [other for other in ("en", "nl", "de", "fr") if other != language]
    drawn = still(countdown(language=language))
    for other in others:
        assert ImageChops.difference(drawn, still(countdown(language=other))).getbbox()


def test_other_languages_are_refused() -> None:
    with pytest.raises(ValidationError):
        countdown(language="es")
