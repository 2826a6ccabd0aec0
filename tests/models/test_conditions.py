"""Targeting conditions: validation with field paths, and evaluation without eval."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from models.campaigns.conditions import Audience, Condition
from models.errors import field_errors

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
MONDAY_0930_UTC = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def matches(condition: dict[str, Any], **audience: Any) -> bool:
    audience.setdefault("now", MONDAY_0930_UTC)
    result: bool = CONDITION.validate_python(condition).matches(Audience(**audience))
    return result


@pytest.mark.parametrize(
    ("condition", "profile", "expected"),
    [
        ({"attr": "country", "eq": "NL"}, {"country": "NL"}, True),
        ({"attr": "country", "eq": "NL"}, {"country": "BE"}, False),
        ({"attr": "country", "ne": "NL"}, {"country": "BE"}, True),
        ({"attr": "country", "in": ["NL", "BE"]}, {"country": "BE"}, True),
        ({"attr": "country", "not_in": ["NL", "BE"]}, {"country": "BE"}, False),
        ({"attr": "age", "gte": 18, "lt": 65}, {"age": 40}, True),
        ({"attr": "age", "gte": 18, "lt": 65}, {"age": 65}, False),
        ({"attr": "age", "gt": 18}, {"age": "forty"}, False),  # wrong type never matches
        ({"attr": "age", "gt": 18}, {"age": True}, False),
        ({"attr": "age", "gt": 18}, {}, False),  # missing never matches
        ({"attr": "first_name", "exists": True}, {"first_name": "Anna"}, True),
        ({"attr": "first_name", "exists": True}, {}, False),
        ({"attr": "first_name", "exists": False}, {}, True),
        ({"attr": "signup", "gte": "2026-01-01"}, {"signup": "2026-03-04"}, True),
    ],
)
def test_attribute_comparisons(
    condition: dict[str, Any], profile: dict[str, Any], expected: bool
) -> None:
    assert matches(condition, profile=profile) is expected


def test_scores_segments_and_combinators() -> None:
    rule = {
        "all": [
            {"score": "travel_propensity", "gte": 0.7},
            {"any": [{"segment": "champions"}, {"segment": "loyal"}]},
            {"not": {"attr": "lifecycle", "eq": "lapsed"}},
        ]
    }
    assert matches(rule, scores={"travel_propensity": 0.8}, segments=frozenset({"loyal"}))
    assert not matches(rule, scores={"travel_propensity": 0.6}, segments=frozenset({"loyal"}))
    assert not matches(rule, scores={"travel_propensity": 0.8}, segments=frozenset())
    assert not matches(
        rule,
        scores={"travel_propensity": 0.8},
        segments=frozenset({"loyal"}),
        profile={"lifecycle": "lapsed"},
    )
    assert not matches({"score": "churn", "gte": 0.1})  # missing score
    assert matches({"all": []})


def test_time_windows_in_a_time_zone() -> None:
    morning_amsterdam = {"time": {"tz": "Europe/Amsterdam", "start": "10:00", "end": "11:00"}}
    assert matches(morning_amsterdam)  # 09:30 UTC is 10:30 in Amsterdam
    assert not matches(morning_amsterdam, now=MONDAY_0930_UTC + dt.timedelta(hours=1))
    weekend = {"time": {"tz": "UTC", "weekdays": ["sat", "sun"]}}
    assert not matches(weekend)
    assert matches(weekend, now=MONDAY_0930_UTC - dt.timedelta(days=1))
    night = {"time": {"tz": "UTC", "start": "22:00", "end": "06:00"}}
    assert not matches(night)
    assert matches(night, now=MONDAY_0930_UTC.replace(hour=23))
    assert matches(night, now=MONDAY_0930_UTC.replace(hour=2))
    campaign_period = {
        "time": {"from": "2026-11-20T00:00:00+01:00", "until": "2026-11-24T00:00:00+01:00"}
    }
    assert matches(campaign_period)
    assert not matches(campaign_period, now=MONDAY_0930_UTC + dt.timedelta(days=1))


def test_time_zone_of_the_recipient() -> None:
    local_morning = {"time": {"tz": "recipient", "start": "08:00", "end": "12:00"}}
    assert matches(local_morning, profile={"time_zone": "Europe/Amsterdam"})  # 10:30
    assert not matches(local_morning, profile={"time_zone": "America/New_York"})  # 04:30
    assert matches(local_morning, profile={"time_zone": "Not/AZone"})  # falls back to UTC 09:30


def test_client_and_device() -> None:
    assert matches({"client": ["gmail_proxy"]}, client="gmail_proxy")
    assert not matches({"client": ["gmail_proxy"]}, client="apple_mpp")
    assert matches({"device": ["mobile", "tablet"]}, device="mobile")
    assert not matches({"device": ["mobile"]}, device="desktop")


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"all": [{"score": "x", "gte": 1}, {"scor": "x"}]}, ("all", 1), "needs one of the keys"),
        ({"all": [{"score": "x"}]}, ("all", 0, "score"), "needs an operator"),
        ({"time": {"tz": "Mars/Olympus"}}, ("time", "tz"), "unknown time zone"),
        ({"time": {"from": "2026-01-01T00:00:00"}}, ("time", "from"), "time zone offset"),
        ({"not": {"attr": "a", "eq": "b", "bogus": 1}}, ("not", "bogus"), "Extra inputs"),
        ({"device": ["fridge"]}, ("device", 0), "Input should be"),
    ],
)
def test_invalid_conditions_name_the_field(
    condition: dict[str, Any], path: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CONDITION.validate_python(condition)
    errors = field_errors(caught.value, condition)
    assert any(e.path == path and message in e.message for e in errors), errors


def test_conditions_round_trip_as_json() -> None:
    rule = {
        "all": [
            {"score": "p", "gte": 0.5},
            {"not": {"segment": "vip"}},
            {"attr": "country", "in": ["NL"]},
        ]
    }
    parsed = CONDITION.validate_python(rule)
    dumped = CONDITION.dump_python(parsed, mode="json", by_alias=True, exclude_none=True)
    assert dumped == rule


def test_recent_customer_events() -> None:
    contact = {"event": "cs_contact", "within_days": 7}
    recent = {"cs_contact": MONDAY_0930_UTC - dt.timedelta(days=6)}
    old = {"cs_contact": MONDAY_0930_UTC - dt.timedelta(days=8)}
    assert matches(contact, events=recent)
    assert not matches(contact, events=old)
    assert not matches(contact)
    assert matches({"event": "cs_contact"}, events=old)  # default look-back: a year


# freshness


def test_seen_within_days_looks_at_the_latest_event_or_order() -> None:
    seen_90 = {"seen_within_days": 90}
    assert matches(seen_90, last_seen=MONDAY_0930_UTC - dt.timedelta(days=89))
    assert matches(seen_90, last_seen=MONDAY_0930_UTC - dt.timedelta(days=90))
    assert not matches(seen_90, last_seen=MONDAY_0930_UTC - dt.timedelta(days=120))
    assert not matches(seen_90)  # never seen
    assert matches({"not": seen_90})


@pytest.mark.parametrize(
    ("written_days_ago", "expected"),
    [(10, True), (365, True), (366, False), (None, False)],
)
def test_attribute_updated_within_days(written_days_ago: int | None, expected: bool) -> None:
    updated = (
        {"first_name": MONDAY_0930_UTC - dt.timedelta(days=written_days_ago)}
        if written_days_ago is not None
        else {}
    )
    condition = {"attr": "first_name", "exists": True, "updated_within_days": 365}
    assert matches(condition, profile={"first_name": "Anna"}, attributes_updated=updated) is (
        expected
    )
    alone = {"attr": "first_name", "updated_within_days": 365}  # implies exists
    assert matches(alone, profile={"first_name": "Anna"}, attributes_updated=updated) is expected


def test_fresh_attribute_still_needs_a_value_and_its_operators() -> None:
    written = {"salutation": MONDAY_0930_UTC - dt.timedelta(days=1)}
    condition = {"attr": "salutation", "in": ["Ms", "Mr"], "updated_within_days": 30}
    assert matches(condition, profile={"salutation": "Ms"}, attributes_updated=written)
    assert not matches(condition, profile={"salutation": "Dr"}, attributes_updated=written)
    assert not matches(condition, profile={}, attributes_updated=written)  # removed since


def test_salutation_only_when_known_and_confirmed() -> None:
    rule = {
        "all": [
            {"attr": "salutation", "exists": True},
            {"attr": "salutation_confirmed", "eq": True},
        ]
    }
    assert matches(rule, profile={"salutation": "Ms", "salutation_confirmed": True})
    assert not matches(rule, profile={"salutation": "Ms", "salutation_confirmed": False})
    assert not matches(rule, profile={"salutation": "Ms", "salutation_confirmed": "true"})
    assert not matches(rule, profile={"salutation": "Ms"})
    assert not matches(rule, profile={"salutation_confirmed": True})


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"seen_within_days": 0}, ("seen_within_days",), "greater than 0"),
        ({"seen_within_days": 400}, ("seen_within_days",), "less than or equal to 365"),
        ({"all": [{"seen_within_days": "soon"}]}, ("all", 0, "seen_within_days"), "valid number"),
        (
            {"attr": "first_name", "exists": False, "updated_within_days": 90},
            ("attr",),
            "drop exists: false",
        ),
        ({"attr": "first_name", "updated_within_days": -1}, ("updated_within_days",), "greater"),
        ({"attr": "first_name"}, ("attr",), "or updated_within_days"),
        ({"score": "p", "updated_within_days": 9}, ("updated_within_days",), "Extra inputs"),
    ],
)
def test_invalid_freshness_conditions_name_the_field(
    condition: dict[str, Any], path: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CONDITION.validate_python(condition)
    errors = field_errors(caught.value, condition)
    assert any(e.path == path and message in e.message for e in errors), errors


def test_freshness_conditions_round_trip_as_json() -> None:
    rule = {
        "all": [
            {"seen_within_days": 90.0},
            {"attr": "first_name", "exists": True, "updated_within_days": 365.0},
        ]
    }
    parsed = CONDITION.validate_python(rule)
    dumped = CONDITION.dump_python(parsed, mode="json", by_alias=True, exclude_none=True)
    assert dumped == rule
