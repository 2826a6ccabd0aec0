"""Attribution rules with known answers (docs/conversions.md, "Attribution rules")."""

from __future__ import annotations

import datetime as dt

import pytest

from models.conversions.attribution import CLOCK_SKEW, Attribution, Windows, attribute
from models.conversions.touches import Touch

ORDER_AT = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SEND_AT = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
WINDOWS = Windows(click_days=7, view_days=1, late_days=7)


def touch(before: dt.timedelta, variant: str = "hot", send: str | None = "2026-11-30") -> Touch:
    return Touch("daily", "hero", variant, send, ORDER_AT - before)


def sent_at(campaign_id: str, send_id: str) -> dt.datetime | None:
    return {"2026-11-20": SEND_AT, "2026-11-30": ORDER_AT - dt.timedelta(days=1, hours=2)}.get(
        send_id
    )


def credit(clicks: list[Touch | None], view: Touch | None) -> Attribution:
    return attribute(ORDER_AT, clicks, view, WINDOWS, sent_at)


def test_the_last_click_within_the_window_is_credited() -> None:
    last = touch(dt.timedelta(hours=3), "cold")
    earlier = touch(dt.timedelta(days=2), "hot")
    found = credit([earlier, last], None)
    assert (found.basis, found.touch) == ("click", last)


def test_a_click_older_than_the_window_is_not_credited() -> None:
    assert credit([touch(dt.timedelta(days=7, seconds=1))], None).basis == "none"
    assert credit([touch(dt.timedelta(days=7))], None).basis == "click"  # the edge counts


def test_a_click_is_preferred_to_a_later_open() -> None:
    click = touch(dt.timedelta(days=3), "hot")
    view = touch(dt.timedelta(hours=1), "cold")
    found = credit([click], view)
    assert (found.basis, found.touch) == ("click", click)


def test_without_a_click_the_last_open_of_the_shorter_window_is_view_through() -> None:
    view = touch(dt.timedelta(hours=20))
    assert credit([None], view) == Attribution("view", view)
    assert credit([None], touch(dt.timedelta(days=1, seconds=1))).basis == "none"


def test_a_touch_after_the_order_counts_only_within_the_clock_skew() -> None:
    assert credit([touch(-CLOCK_SKEW)], None).basis == "click"
    assert credit([touch(-CLOCK_SKEW - dt.timedelta(seconds=1))], None).basis == "none"


def test_a_touch_more_than_the_late_threshold_after_its_send_is_late() -> None:
    late = touch(dt.timedelta(hours=1), send="2026-11-20")  # 11 days after the send
    found = credit([late], None)
    assert (found.basis, found.late, found.counted_as) == ("click", True, "late_click")
    prompt = credit([touch(dt.timedelta(hours=1))], None)  # a day after its send
    assert (prompt.late, prompt.counted_as) == (False, "click")
    unknown_send = credit([touch(dt.timedelta(hours=1), send="2026-01-01")], None)
    assert unknown_send.late is False
    no_send = credit([touch(dt.timedelta(hours=1), send=None)], None)
    assert no_send.late is False


@pytest.mark.parametrize(
    "stored",
    [
        Attribution("click", touch(dt.timedelta(hours=3)), late=True),
        Attribution("view", touch(dt.timedelta(hours=3), send=None)),
        Attribution("none"),
    ],
)
def test_an_attribution_reads_back_as_stored(stored: Attribution) -> None:
    assert Attribution.from_stored(stored.stored()) == stored


def test_an_unreadable_attribution_reads_as_absent() -> None:
    for document in (None, "", "{", '{"basis": "who"}', "[]"):
        assert Attribution.from_stored(document) is None
