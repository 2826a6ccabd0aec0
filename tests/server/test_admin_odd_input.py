"""Odd but plausible input gets a clear 4xx, never a 500: digits that are not ASCII, time zone
names that are folders, NaN and Infinity (which are not JSON)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from tests.factories import AdminApi, block, error_pointers, jsonl, problem, variant

NDJSON = "application/x-ndjson"
JSON = "application/json"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key, and a campaign ``daily`` with a block ``hero``."""
    admin = AdminApi(client, admin_headers)
    admin.post("/campaigns", json={"id": "daily"})
    admin.post("/campaigns/daily/blocks", json=block(variants=[variant("v")]))
    return admin


@pytest.mark.parametrize("digits", ["²", "١٢", "1²", "9" * 5000])
def test_limits_that_are_not_ascii_digits_are_invalid(api: AdminApi, digits: str) -> None:
    events = api.get("/recipients/anna/events", query_string={"limit": digits})
    assert error_pointers(events) == [("/limit", "limit")]
    audit = api.get("/audit/erasures", query_string={"limit": digits})
    assert error_pointers(audit) == [("/limit", "limit")]


@pytest.mark.parametrize("version", ['"²"', '"١"', '"' + "9" * 5000 + '"'])
def test_an_if_match_that_is_not_ascii_digits_fails_the_precondition(
    api: AdminApi, version: str
) -> None:
    response = api.put("/campaigns/daily/blocks/hero", json=block(), headers={"If-Match": version})
    assert "If-Match" in problem(response, 412)["detail"]
    assert api.get("/campaigns/daily/blocks/hero").get_json()["version"] == 1


def countdown(**extra: Any) -> dict[str, Any]:
    """A block whose one variant is a countdown to a profile field."""
    content = {"type": "countdown", "deadline_field": "offer_ends", **extra}
    timer = {"id": "timer", "content": content, "target_url": "https://shop.example/sale"}
    return block(variants=[timer])


@pytest.mark.parametrize(
    ("where", "pointer"),
    [
        ({"time_zone": "America"}, "/variants/0/content/time_zone"),
        ({"fallback_time_zone": "America"}, "/variants/0/content/fallback_time_zone"),
    ],
)
def test_a_countdown_time_zone_that_is_a_folder_is_invalid(
    api: AdminApi, where: dict[str, str], pointer: str
) -> None:
    response = api.put("/campaigns/daily/blocks/hero", json=countdown(**where))
    errors = problem(response, 422)["errors"]
    assert [e["pointer"] for e in errors] == [pointer]
    assert errors[0]["detail"] == (
        "unknown time zone 'America' (use an IANA name such as Europe/Amsterdam)"
    )


def test_every_time_zone_field_refuses_a_folder_the_same_way(api: AdminApi) -> None:
    detail = "unknown time zone 'America' (use an IANA name such as Europe/Amsterdam)"
    profile = api.put("/recipients/anna/profile", json={"attributes": {"time_zone": "America"}})
    window = {"time": {"tz": "America", "start": "08:00"}}
    condition = api.put("/campaigns/daily/blocks/hero", json=block(variants=[variant("v", window)]))
    newsletter = api.put(
        "/campaigns/daily/newsletter",
        json={"feed": "trips", "slots": [], "schedule": {"time_zone": "America"}},
    )
    for response, pointer in (
        (profile, "/attributes/time_zone"),
        (condition, "/variants/0/when/time/tz"),
        (newsletter, "/schedule/time_zone"),
    ):
        errors = {e["pointer"]: e["detail"] for e in problem(response, 422)["errors"]}
        assert errors[pointer] == detail


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_json_bodies_with_nan_or_infinity_are_refused(
    api: AdminApi, redis_client: redis.Redis, literal: str
) -> None:
    bodies = {
        "/recipients/anna/profile": '{"attributes": {"ratio": %s}}',
        "/recipients/anna/scores": '{"scores": {"p": %s}}',
        "/live/flights": '{"values": {"delay": %s}, "max_age_seconds": 60}',
        "/feeds/trips/items/i1": '{"title": "T", "url": "https://shop.example/", "price": %s}',
    }
    for path, body in bodies.items():
        response = api.put(path, data=body % literal, content_type=JSON)
        assert problem(response, 422)["detail"] == "the request body is not valid JSON", path
    assert redis_client.exists(keys.profile("anna")) == 0
    assert api.get("/recipients/anna/profile").status_code == 404


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_jsonl_profiles_and_events_with_nan_are_refused_by_line(
    api: AdminApi, literal: str
) -> None:
    profiles = jsonl(
        {"recipient_id": "anna", "attributes": {"ratio": 0.5}},
        '{"recipient_id": "bram", "attributes": {"ratio": LITERAL}}'.replace("LITERAL", literal),
    )
    report = api.post("/profiles/bulk", data=profiles, content_type=NDJSON).get_json()
    assert (report["stored"], report["rejected"]) == (1, 1)
    assert report["errors"] == [
        {
            "line": 2,
            "pointer": "/attributes/ratio",
            "detail": "must be a finite number (NaN and Infinity are not JSON)",
        }
    ]
    assert api.get("/recipients/anna/profile").get_json()["attributes"] == {"ratio": 0.5}
    event = (
        '{"recipient_id": "anna", "type": "site_visit", "at": "2026-11-20T12:00:00+01:00", '
        '"attributes": {"ratio": LITERAL}}'
    ).replace("LITERAL", literal)
    report = api.post("/events/bulk", data=jsonl(event), content_type=NDJSON).get_json()
    assert [(e["line"], e["pointer"]) for e in report["errors"]] == [(1, "/attributes/ratio")]
    assert api.get("/recipients/anna/events").get_json()["events"] == []
