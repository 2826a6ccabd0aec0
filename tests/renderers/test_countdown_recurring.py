"""Recurring countdown deadlines: the next daily or weekly cut-off after the open, in a zone,
skipping holidays; known answers across DST changes and holidays."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from PIL import ImageChops
from pydantic import ValidationError

from renderers.countdown import RENDERER, resolve_deadline
from tests.renderers.test_countdown import MOMENT, countdown, request, still

AMSTERDAM = "Europe/Amsterdam"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    """A UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def deadline_at(at: dt.datetime, zone: str = AMSTERDAM, **recurring: Any) -> dt.datetime:
    """The resolved deadline of a recurring countdown opened at ``at``."""
    params = countdown(recurring=recurring, time_zone=zone)
    return resolve_deadline(params, request(moment=at))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(utc(2026, 11, 23, 9, 30), utc(2026, 11, 23, 13), id="morning: today"),
        pytest.param(utc(2026, 11, 23, 12, 59, 59), utc(2026, 11, 23, 13), id="a second before"),
        pytest.param(utc(2026, 11, 23, 13), utc(2026, 11, 24, 13), id="at the cut-off: tomorrow"),
        pytest.param(utc(2026, 11, 23, 23, 30), utc(2026, 11, 24, 13), id="after local midnight"),
        # 2026-03-29: Amsterdam goes from CET (+1) to CEST (+2), so 14:00 is 12:00 UTC.
        pytest.param(utc(2026, 3, 28, 14), utc(2026, 3, 29, 12), id="into summer time"),
        # 2026-10-25: back from CEST to CET, so 14:00 is 13:00 UTC again.
        pytest.param(utc(2026, 10, 24, 13), utc(2026, 10, 25, 13), id="into winter time"),
    ],
)
def test_a_daily_cut_off_is_the_next_one_strictly_after_the_open(
    at: dt.datetime, expected: dt.datetime
) -> None:
    assert deadline_at(at, time="14:00") == expected


def test_the_day_after_a_dst_change_is_23_or_25_hours_away() -> None:
    spring = deadline_at(utc(2026, 3, 28, 13), time="14:00")  # 14:00 CET, the cut-off itself
    autumn = deadline_at(utc(2026, 10, 24, 12), time="14:00")  # 14:00 CEST

    assert spring - utc(2026, 3, 28, 13) == dt.timedelta(hours=23)
    assert autumn - utc(2026, 10, 24, 12) == dt.timedelta(hours=25)


def test_new_york_changes_its_clocks_on_another_day() -> None:
    # 2026-03-08: New York goes from EST (-5) to EDT (-4); Amsterdam waits until 29 March.
    assert deadline_at(utc(2026, 3, 7, 20), "America/New_York", time="14:00") == utc(2026, 3, 8, 18)
    assert deadline_at(utc(2026, 3, 7, 20), AMSTERDAM, time="14:00") == utc(2026, 3, 8, 13)


def test_a_time_the_clocks_skip_falls_when_they_pass_it() -> None:
    # 02:30 does not exist in Amsterdam on 2026-03-29 (02:00 CET becomes 03:00 CEST).
    assert deadline_at(utc(2026, 3, 29, 0), time="02:30") == utc(2026, 3, 29, 1, 30)


def test_a_time_the_clocks_repeat_is_its_first_occurrence() -> None:
    # 02:30 happens twice in Amsterdam on 2026-10-25: first in CEST (00:30 UTC).
    assert deadline_at(utc(2026, 10, 24, 23), time="02:30") == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(MOMENT, utc(2026, 11, 29, 22, 59), id="Monday: this Sunday"),
        pytest.param(utc(2026, 11, 29, 22, 58, 59), utc(2026, 11, 29, 22, 59), id="last minute"),
        pytest.param(utc(2026, 11, 29, 22, 59, 30), utc(2026, 12, 6, 22, 59), id="just missed"),
        # Sunday 29 March 2026 is the day summer time starts: 23:59 CEST is 21:59 UTC.
        pytest.param(utc(2026, 3, 23, 9), utc(2026, 3, 29, 21, 59), id="DST Sunday"),
    ],
)
def test_a_weekly_cut_off_ends_every_sunday_at_23_59(
    at: dt.datetime, expected: dt.datetime
) -> None:
    assert deadline_at(at, time="23:59", weekdays=["sun"]) == expected


def test_a_holiday_moves_the_cut_off_to_the_next_valid_day() -> None:
    christmas = ["2026-12-25", "2026-12-26"]
    after_thursdays = utc(2026, 12, 24, 13, 30)  # 14:30 CET on Thursday 24 December

    every_day = deadline_at(after_thursdays, time="14:00", except_dates=christmas)
    working_days = deadline_at(
        after_thursdays,
        time="14:00",
        weekdays=["mon", "tue", "wed", "thu", "fri"],
        except_dates=christmas,
    )
    before_it = deadline_at(utc(2026, 12, 24, 9), time="14:00", except_dates=christmas)

    assert every_day == utc(2026, 12, 27, 13)  # Sunday
    assert working_days == utc(2026, 12, 28, 13)  # Monday
    assert before_it == utc(2026, 12, 24, 13)  # a holiday tomorrow changes nothing today


def test_holidays_are_local_dates() -> None:
    # 23:30 UTC on 31 December is already 1 January in Amsterdam, a holiday there.
    at = utc(2026, 12, 31, 23, 30)

    assert deadline_at(at, time="14:00", except_dates=["2027-01-01"]) == utc(2027, 1, 2, 13)
    assert deadline_at(at, "UTC", time="14:00", except_dates=["2027-01-01"]) == utc(2027, 1, 2, 14)


def test_the_recipient_time_zone_comes_from_the_profile() -> None:
    params = countdown(recurring={"time": "14:00"}, time_zone="recipient")
    fallback = countdown(
        recurring={"time": "14:00"}, time_zone="recipient", fallback_time_zone="Asia/Tokyo"
    )

    in_new_york = resolve_deadline(params, request(fields={"time_zone": "America/New_York"}))
    without_zone = resolve_deadline(params, request())
    in_tokyo = resolve_deadline(fallback, request(fields={"time_zone": "Not/AZone"}))

    assert in_new_york == utc(2026, 11, 23, 19)
    assert without_zone == utc(2026, 11, 23, 14)
    assert in_tokyo == utc(2026, 11, 24, 5)  # 18:30 in Tokyo: tomorrow's 14:00
    assert RENDERER.fields_used(params) == frozenset({"time_zone"})
    assert RENDERER.fields_used(countdown(recurring={"time": "14:00"})) == frozenset()


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", utc(2026, 11, 23, 14)),
        ("Pacific/Kiritimati", utc(2026, 11, 24, 0)),  # +14: already 23:30 on the 23rd
        ("Pacific/Pago_Pago", utc(2026, 11, 24, 1)),  # -11: still 22:30 on the 22nd
        ("Asia/Kolkata", utc(2026, 11, 24, 8, 30)),  # +05:30: 15:00, just missed
        ("Australia/Lord_Howe", utc(2026, 11, 24, 3)),  # +11 in its summer (half-hour DST)
    ],
)
def test_frame_one_is_right_in_every_time_zone(zone: str, expected: dt.datetime) -> None:
    params = countdown(recurring={"time": "14:00"}, time_zone=zone)

    assert resolve_deadline(params, request()) == expected
    absolute = still(countdown(deadline=expected))
    assert ImageChops.difference(still(params), absolute).getbbox() is None


def test_recipients_with_the_same_next_cut_off_share_a_cache_key() -> None:
    params = countdown(recurring={"time": "14:00"}, time_zone="recipient")
    paris = request(fields={"time_zone": "Europe/Paris", "first_name": "Anna"})
    berlin = request(fields={"time_zone": "Europe/Berlin", "first_name": "Bram"})
    london = request(fields={"time_zone": "Europe/London"})

    assert RENDERER.cache_key(params, paris) == RENDERER.cache_key(params, berlin)
    assert RENDERER.cache_key(params, paris) != RENDERER.cache_key(params, london)


@pytest.mark.parametrize(
    ("recurring", "location"),
    [
        ({"time": "25:00"}, ("recurring", "time")),
        ({"time": "14:00+01:00"}, ("recurring", "time")),
        ({"time": "14:00", "weekdays": []}, ("recurring", "weekdays")),
        ({"time": "14:00", "weekdays": ["sun", "sun"]}, ("recurring", "weekdays")),
        ({"time": "14:00", "weekdays": ["sunday"]}, ("recurring", "weekdays", 0)),
        ({"time": "14:00", "except_dates": ["25-12-2026"]}, ("recurring", "except_dates", 0)),
        ({"time": "14:00", "every": "day"}, ("recurring", "every")),
    ],
)
def test_invalid_recurring_deadlines_name_the_field(
    recurring: dict[str, Any], location: tuple[int | str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        countdown(recurring=recurring)

    assert [error["loc"] for error in caught.value.errors()] == [location]


def test_a_recurring_deadline_is_one_of_the_deadline_modes() -> None:
    with pytest.raises(ValidationError, match="got deadline and recurring"):
        countdown(deadline=MOMENT, recurring={"time": "14:00"})
