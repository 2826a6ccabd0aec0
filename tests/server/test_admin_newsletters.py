"""Admin API v1: a campaign's newsletter (PUT, GET, DELETE, problem details for bad specs), its
suppression list, and its sends: the day's audience streamed as CSV or JSON Lines, with the
send, its counts and its holdout recorded."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from models.campaigns.specs import CampaignSpec
from models.recipients.upserts import ProfileUpsert
from models.storage import keys
from server.admin_api import api as admin_api
from server.api_operations import Operation
from server.services import Services
from tests.factories import AdminApi, FakeClock, error_pointers, problem, redis_contents
from tests.newsletter_fixtures import newsletter_document, store_subscriber

NEWSLETTER = "/campaigns/daily/newsletter"
SENDS = "/campaigns/daily/sends"
MONDAY = "2026-11-23"  # the clock's day
SUNDAY = "2026-11-22"
WORKDAYS = {"weekdays": ["mon", "tue", "wed", "thu", "fri"]}
CAMPAIGN_KEYS = "blanco:cfg:{c:daily}:*"
SEND_KEYS = "blanco:cfg:{c:daily}:send*"
COLUMNS = ["recipient_id", "bl_token", "bl_send"]


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def campaign(services: Services) -> str:
    """The ``daily`` campaign, without a newsletter yet."""
    services.campaigns.create_campaign(CampaignSpec(id="daily"))
    return "daily"


def put_newsletter(api: AdminApi, campaign_id: str = "daily", **extra: Any) -> dict[str, Any]:
    """Store a newsletter through the API; return the answer."""
    response = api.put(f"/campaigns/{campaign_id}/newsletter", json=newsletter_document(**extra))
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def export(api: AdminApi, campaign_id: str = "daily", **request: Any) -> TestResponse:
    """``POST /campaigns/{c}/sends`` with ``request`` as the body, read to the end; checks it
    succeeded."""
    response = api.post(f"/campaigns/{campaign_id}/sends", json=request, buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def csv_rows(response: TestResponse) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of a CSV export, rows sorted by recipient id."""
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    rows = sorted(reader, key=lambda row: row["recipient_id"])
    return list(reader.fieldnames or []), rows


def jsonl_rows(response: TestResponse) -> list[dict[str, Any]]:
    """The rows of a JSON Lines export, in the order they came."""
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def counts(api: AdminApi, send_id: str, campaign_id: str = "daily") -> dict[str, int]:
    """The recorded counts of a send."""
    response = api.get(f"/campaigns/{campaign_id}/sends/{send_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    found: dict[str, int] = response.get_json()["counts"]
    return found


def sorted_counts(
    considered: int = 0,
    audience: int = 0,
    holdout: int = 0,
    suppressed: int = 0,
    no_consent: int = 0,
    not_selected: int = 0,
) -> dict[str, int]:
    """A counts document."""
    return {
        "considered": considered,
        "audience": audience,
        "holdout": holdout,
        "suppressed": suppressed,
        "no_consent": no_consent,
        "not_selected": not_selected,
    }


# the newsletter definition


def test_put_creates_then_replaces_the_newsletter(api: AdminApi, campaign: str) -> None:
    document = newsletter_document(name="Daily trips", schedule=WORKDAYS)
    created = api.put(NEWSLETTER, json=document)
    assert created.status_code == 201
    first = created.get_json()
    assert (first["campaign_id"], first["version"]) == ("daily", 1)
    assert dt.datetime.fromisoformat(first["updated_at"]).utcoffset() == dt.timedelta(0)
    spec = {k: v for k, v in first.items() if k not in ("campaign_id", "version", "updated_at")}
    assert spec == {
        **document,
        "schedule": {"time": "10:00:00", "time_zone": "Europe/Amsterdam", **WORKDAYS},
    }
    assert api.get(NEWSLETTER).get_json() == first

    replaced = api.put(NEWSLETTER, json={**document, "name": "Trips of the day", "holdout": 0.1})
    assert replaced.status_code == 200
    second = replaced.get_json()
    assert (second["version"], second["name"], second["holdout"]) == (2, "Trips of the day", 0.1)
    assert api.get(NEWSLETTER).get_json() == second


def test_the_defaults_of_a_minimal_newsletter(api: AdminApi, campaign: str) -> None:
    document = newsletter_document(slots=1)
    minimal = {"feed": "trips", "slots": document["slots"]}
    answer = api.put(NEWSLETTER, json=minimal).get_json()
    assert answer["schedule"] == {
        "time": "10:00:00",
        "time_zone": "Europe/Amsterdam",
        "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    }
    assert (answer["require_consent"], answer["consent_attribute"], answer["holdout"]) == (
        True,
        "consent_email",
        0.0,
    )
    assert answer["esp_fields"] == ["email", "first_name"]
    assert answer["ranking"] == {
        "affinity_prefix": "affinity:",
        "default_affinity": 0.5,
        "max_per_category": 1,
        "fatigue_sends": 5,
        "fatigue_decay": 0.5,
        "max_in_a_row": 3,
        "exclude_bought": True,
        "exclude_bought_categories": [],
        "popularity_weight": 0.5,
        "exploration_share": 0.0,
        "novelty_share": 0.0,
    }
    assert "audience" not in answer


def test_a_newsletter_read_can_be_written_back_unchanged(api: AdminApi, campaign: str) -> None:
    """The answers use the JSON names of the audience rule (``not``, ``in``, ``from``)."""
    audience = {
        "all": [
            {"not": {"segment": "unsubscribed_elsewhere"}},
            {"attr": "country", "in": ["NL", "BE"]},
            {"time": {"from": "2026-11-01T00:00:00+01:00"}},
        ]
    }
    put = api.put(NEWSLETTER, json=newsletter_document(audience=audience))
    assert put.get_json()["audience"]["all"][0] == {"not": {"segment": "unsubscribed_elsewhere"}}
    read = api.get(NEWSLETTER).get_json()
    assert read["audience"]["all"][:2] == audience["all"][:2]
    assert read["audience"]["all"][2]["time"]["from"] == "2026-11-01T00:00:00+01:00"
    spec = {k: v for k, v in read.items() if k not in ("campaign_id", "version", "updated_at")}
    again = api.put(NEWSLETTER, json=spec)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["audience"] == read["audience"]


def test_delete_removes_the_newsletter_but_keeps_its_sends(
    api: AdminApi, services: Services, campaign: str
) -> None:
    put_newsletter(api)
    store_subscriber(services, "anna")
    export(api, date=MONDAY)
    assert api.delete(NEWSLETTER).status_code == 204
    problem(api.get(NEWSLETTER), 404)
    problem(api.delete(NEWSLETTER), 404)
    assert [s["id"] for s in api.get(SENDS).get_json()["sends"]] == [MONDAY]
    problem(api.post(SENDS, json={"date": MONDAY}), 404)
    assert api.put(NEWSLETTER, json=newsletter_document()).status_code == 201


def test_an_unknown_campaign_or_missing_newsletter_is_not_found(
    api: AdminApi, redis_client: redis.Redis, campaign: str
) -> None:
    missing = problem(api.put("/campaigns/nope/newsletter", json=newsletter_document()), 404)
    assert missing["detail"] == "no campaign 'nope'"
    assert redis_contents(redis_client, "blanco:cfg:{c:nope}:*") == {}
    for path in ("/campaigns/nope/newsletter", NEWSLETTER):
        assert "has no newsletter" in problem(api.get(path), 404)["detail"]
        problem(api.delete(path), 404)
        problem(api.post(f"{path}/suppressions", json={"recipient_ids": ["anna"]}), 404)
    problem(api.post("/campaigns/nope/sends", json={}), 404)
    problem(api.post(SENDS, json={"date": MONDAY}), 404)
    assert redis_contents(redis_client, CAMPAIGN_KEYS) == {
        keys.campaign("daily"): redis_client.get(keys.campaign("daily"))
    }


def _slot(**changes: Any) -> dict[str, Any]:
    return {**newsletter_document(slots=1)["slots"][0], **changes}


@pytest.mark.parametrize(
    ("changes", "pointers", "detail"),
    [
        ({"slots": []}, [("/slots", "slots")], "at least 1"),
        ({"slots": [_slot()] * 13}, [("/slots", "slots")], "at most 12"),
        (
            {"schedule": {"time_zone": "Mars/Olympus_Mons"}},
            [("/schedule/time_zone", "schedule.time_zone")],
            "unknown time zone 'Mars/Olympus_Mons'",
        ),
        (
            {"schedule": {"weekdays": ["mon", "someday"]}},
            [("/schedule/weekdays/1", "schedule.weekdays.1")],
            "'mon'",
        ),
        ({"schedule": {"weekdays": []}}, [("/schedule/weekdays", "schedule.weekdays")], "least"),
        ({"schedule": {"time": "25:00"}}, [("/schedule/time", "schedule.time")], "time"),
        ({"holdout": 0.51}, [("/holdout", "holdout")], "less than or equal to 0.5"),
        ({"holdout": -0.1}, [("/holdout", "holdout")], "greater than or equal to 0"),
        (
            {"esp_fields": ["email", "first_name", "email"]},
            [("/esp_fields", "esp_fields")],
            "twice",
        ),
        ({"esp_fields": ["E-mail"]}, [("/esp_fields/0", "esp_fields.0")], "pattern"),
        (
            {
                "slots": [
                    _slot(),
                    _slot(layout={"type": "banner", "background": "blue", "lines": []}),
                ]
            },
            [
                ("/slots/1/layout/background", "slots.1.layout.background"),
                ("/slots/1/layout/lines", "slots.1.layout.lines"),
            ],
            "pattern",
        ),
        (
            {"slots": [_slot(layout={"type": "hologram"})]},
            [("/slots/0/layout", "slots.0.layout")],
            None,
        ),
        ({"slots": [_slot(width=0)]}, [("/slots/0/width", "slots.0.width")], "greater than"),
        (
            {"slots": [_slot(fallback={"content": _slot()["layout"], "target_url": "nope"})]},
            [("/slots/0/fallback/target_url", "slots.0.fallback.target_url")],
            "http(s)",
        ),
        ({"audience": {"score": "travel"}}, [("/audience/score", "audience.score")], "operator"),
        ({"audience": {"colour": "red"}}, [("/audience", "audience")], "a condition needs"),
        (
            {"audience": {"all": [{"segment": "vip"}, {"attr": "age"}]}},
            [("/audience/all/1/attr", "audience.all.1.attr")],
            "needs an operator",
        ),
        ({"feed": "Trips"}, [("/feed", "feed")], "pattern"),
        ({"consent_attribute": "Consent"}, [("/consent_attribute", "consent_attribute")], None),
        ({"colour": "red"}, [("/colour", "colour")], "Extra inputs"),
    ],
)
def test_a_bad_spec_is_refused_with_pointers_and_nothing_is_stored(
    api: AdminApi,
    redis_client: redis.Redis,
    campaign: str,
    changes: dict[str, Any],
    pointers: list[tuple[str, str]] | None,
    detail: str | None,
) -> None:
    before = redis_contents(redis_client, CAMPAIGN_KEYS)
    response = api.put(NEWSLETTER, json={**newsletter_document(), **changes})
    body = problem(response, 422)
    if pointers is not None:
        assert error_pointers(response) == pointers
    if detail is not None:
        assert detail in body["errors"][0]["detail"]
    assert redis_contents(redis_client, CAMPAIGN_KEYS) == before
    problem(api.get(NEWSLETTER), 404)


# suppressions


def test_suppressions_are_added_counted_and_removed(
    api: AdminApi, redis_client: redis.Redis, campaign: str
) -> None:
    put_newsletter(api)
    added = api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["anna", "bram"]})
    assert (added.status_code, added.get_json()) == (
        200,
        {"added": 2, "erased": 0, "suppressed": 2},
    )
    again = api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["bram", "chloe"]})
    assert again.get_json() == {"added": 1, "erased": 0, "suppressed": 3}
    assert redis_client.smembers(keys.suppressions("daily")) == {"anna", "bram", "chloe"}

    assert api.delete(f"{NEWSLETTER}/suppressions/bram").status_code == 204
    missing = problem(api.delete(f"{NEWSLETTER}/suppressions/bram"), 404)
    assert missing["detail"] == "'bram' is not suppressed"
    problem(api.delete(f"{NEWSLETTER}/suppressions/daan"), 404)
    assert redis_client.smembers(keys.suppressions("daily")) == {"anna", "chloe"}
    assert api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["bram"]}).get_json() == {
        "added": 1,
        "erased": 0,
        "suppressed": 3,
    }


def test_bad_suppression_requests_are_refused(
    api: AdminApi, redis_client: redis.Redis, campaign: str
) -> None:
    put_newsletter(api)
    path = f"{NEWSLETTER}/suppressions"
    assert error_pointers(api.post(path, json={"recipient_ids": []})) == [
        ("/recipient_ids", "recipient_ids")
    ]
    assert error_pointers(api.post(path, json={"recipient_ids": ["anna", "a b"]})) == [
        ("/recipient_ids/1", "recipient_ids.1")
    ]
    assert error_pointers(api.post(path, json={"ids": ["anna"]})) == [
        ("/recipient_ids", "recipient_ids"),
        ("/ids", "ids"),
    ]
    assert redis_client.exists(keys.suppressions("daily")) == 0


# sends: the audience export


@pytest.fixture
def subscribers(services: Services, clock: FakeClock) -> None:
    """Profiles covering every outcome of a send whose audience is ``travel >= 0.5``."""
    store_subscriber(services, "anna", scores={"travel": 0.9}, age=34, vip=True)
    store_subscriber(services, "bram", scores={"travel": 0.7}, first_name="Bram, jr.")
    store_subscriber(services, "chloe", consent=False, scores={"travel": 0.9})
    store_subscriber(services, "daan", consent=None, scores={"travel": 0.9})
    store_subscriber(services, "eva", scores={"travel": 0.2})
    # a score older than its maximum age (7 days by default) counts as missing
    stale = clock.now - dt.timedelta(days=8)
    store_subscriber(services, "finn", scores={"travel": 0.9}, scored_at=stale)
    store_subscriber(services, "gijs", scores={"travel": 0.8})
    services.recipients.upsert_profiles(
        [ProfileUpsert(recipient_id="hugo", attributes={"email": "hugo@mail.example"})]
    )


TRAVELLERS: dict[str, Any] = {"audience": {"score": "travel", "gte": 0.5}}


def test_csv_export_streams_the_audience_with_tokens(
    api: AdminApi, services: Services, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, esp_fields=["email", "first_name", "age", "vip"], **TRAVELLERS)
    api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["gijs"]})
    response = export(api, date=MONDAY, format="csv")
    assert response.mimetype == "text/csv"
    assert response.headers["X-Blanco-Send-Id"] == MONDAY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == f'attachment; filename="daily-{MONDAY}.csv"'

    header, rows = csv_rows(response)
    assert header == [*COLUMNS, "email", "first_name", "age", "vip"]
    assert [row["recipient_id"] for row in rows] == ["anna", "bram"]
    for row in rows:
        assert services.signer.verify(row["bl_token"]) == row["recipient_id"]
    assert [{k: v for k, v in row.items() if k != "bl_token"} for row in rows] == [
        {
            "recipient_id": "anna",
            "bl_send": MONDAY,
            "email": "anna@mail.example",
            "first_name": "Anna",
            "age": "34",
            "vip": "true",
        },
        {
            "recipient_id": "bram",
            "bl_send": MONDAY,
            "email": "bram@mail.example",
            "first_name": "Bram, jr.",
            "age": "",
            "vip": "",
        },
    ]


def test_jsonl_export_keeps_the_types_of_the_esp_fields(
    api: AdminApi, services: Services, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, esp_fields=["email", "age", "vip"], **TRAVELLERS)
    response = export(api, date=MONDAY, format="jsonl")
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["X-Blanco-Send-Id"] == MONDAY
    assert response.headers["Content-Disposition"] == f'attachment; filename="daily-{MONDAY}.jsonl"'
    rows = sorted(jsonl_rows(response), key=lambda row: row["recipient_id"])
    assert [list(row) for row in rows] == [[*COLUMNS, "email", "age", "vip"]] * 3
    for row in rows:
        assert services.signer.verify(row.pop("bl_token")) == row["recipient_id"]
    assert rows == [
        {
            "recipient_id": "anna",
            "bl_send": MONDAY,
            "email": "anna@mail.example",
            "age": 34,
            "vip": True,
        },
        {
            "recipient_id": "bram",
            "bl_send": MONDAY,
            "email": "bram@mail.example",
            "age": None,
            "vip": None,
        },
        {
            "recipient_id": "gijs",
            "bl_send": MONDAY,
            "email": "gijs@mail.example",
            "age": None,
            "vip": None,
        },
    ]


def test_the_send_is_recorded_with_its_counts(
    api: AdminApi, services: Services, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, **TRAVELLERS)
    api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["gijs", "chloe", "nobody"]})
    assert api.get(SENDS).get_json() == {"sends": []}
    export(api, date=MONDAY)

    send = api.get(f"{SENDS}/{MONDAY}").get_json()
    assert send == {
        "id": MONDAY,
        "campaign_id": "daily",
        "date": MONDAY,
        "send_time": "2026-11-23T09:00:00Z",  # 10:00 in Amsterdam (CET)
        "newsletter_version": 1,
        "status": "exported",
        "started_at": "2026-11-23T09:30:00Z",
        "finished_at": "2026-11-23T09:30:00Z",
        # anna, bram: audience; gijs, chloe: suppressed; daan: no consent attribute;
        # eva: travel 0.2; finn: stale score; hugo: no consent attribute
        "counts": sorted_counts(
            considered=8, audience=2, suppressed=2, no_consent=2, not_selected=2
        ),
    }
    assert api.get(SENDS).get_json() == {"sends": [send]}
    assert services.sends.was_sent_to("daily", MONDAY, "anna")
    assert not services.sends.was_sent_to("daily", MONDAY, "gijs")
    assert api.get(f"{SENDS}/{MONDAY}/holdout").get_json() == {
        "send_id": MONDAY,
        "recipient_ids": [],
    }


def test_without_consent_required_every_selected_profile_is_exported(
    api: AdminApi, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, require_consent=False, **TRAVELLERS)
    _, rows = csv_rows(export(api, date=MONDAY))
    assert [row["recipient_id"] for row in rows] == ["anna", "bram", "chloe", "daan", "gijs"]
    assert counts(api, MONDAY) == sorted_counts(considered=8, audience=5, not_selected=3)


def test_the_holdout_is_recorded_and_left_out(
    api: AdminApi, services: Services, campaign: str
) -> None:
    everyone = [f"r{n:03d}" for n in range(60)]
    for rid in everyone:
        store_subscriber(services, rid)
    put_newsletter(api, holdout=0.25)
    _, rows = csv_rows(export(api, date=MONDAY))
    exported = {row["recipient_id"] for row in rows}
    holdout = api.get(f"{SENDS}/{MONDAY}/holdout").get_json()
    held = holdout["recipient_ids"]
    assert holdout["send_id"] == MONDAY
    assert held == sorted(held)
    assert exported.isdisjoint(held)
    assert exported | set(held) == set(everyone)
    assert 5 <= len(held) <= 25  # about a quarter of 60
    assert counts(api, MONDAY) == sorted_counts(
        considered=60, audience=len(exported), holdout=len(held)
    )
    assert not any(services.sends.was_sent_to("daily", MONDAY, rid) for rid in held)
    # the control group is the same every day
    tuesday = "2026-11-24"
    export(api, date=tuesday)
    assert api.get(f"{SENDS}/{tuesday}/holdout").get_json()["recipient_ids"] == held


def test_a_day_the_schedule_skips_is_refused_and_records_nothing(
    api: AdminApi, redis_client: redis.Redis, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, schedule=WORKDAYS)
    response = api.post(SENDS, json={"date": SUNDAY, "format": "jsonl"})
    body = problem(response, 422)
    assert body["detail"] == "the newsletter does not go out on that day"
    assert error_pointers(response) == [("/date", "date")]
    assert body["errors"][0]["detail"] == f"{SUNDAY} is not one of mon, tue, wed, thu, fri"
    assert api.get(SENDS).get_json() == {"sends": []}
    assert redis_contents(redis_client, SEND_KEYS) == {}
    problem(api.get(f"{SENDS}/{SUNDAY}"), 404)
    assert export(api, date=MONDAY).headers["X-Blanco-Send-Id"] == MONDAY


def test_exporting_a_day_again_replaces_its_send(
    api: AdminApi, services: Services, redis_client: redis.Redis, campaign: str, subscribers: None
) -> None:
    put_newsletter(api, **TRAVELLERS)
    first = export(api, date=MONDAY).get_data(as_text=True)
    recorded = counts(api, MONDAY)
    assert recorded == sorted_counts(considered=8, audience=3, no_consent=3, not_selected=2)
    members = redis_client.smembers(keys.send_members("daily", MONDAY))
    assert members == {"anna", "bram", "gijs"}

    assert export(api, date=MONDAY).get_data(as_text=True).count("\n") == first.count("\n")
    assert counts(api, MONDAY) == recorded
    assert len(api.get(SENDS).get_json()["sends"]) == 1

    api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["anna"]})
    put_newsletter(api, holdout=0.0, **TRAVELLERS)  # version 2
    _, rows = csv_rows(export(api, date=MONDAY))
    assert [row["recipient_id"] for row in rows] == ["bram", "gijs"]
    assert counts(api, MONDAY) == sorted_counts(
        considered=8, audience=2, suppressed=1, no_consent=3, not_selected=2
    )
    sends = api.get(SENDS).get_json()["sends"]
    assert [(s["id"], s["newsletter_version"]) for s in sends] == [(MONDAY, 2)]
    assert not services.sends.was_sent_to("daily", MONDAY, "anna")
    assert redis_client.smembers(keys.send_members("daily", MONDAY)) == {"bram", "gijs"}


def test_sends_are_listed_newest_first(api: AdminApi, campaign: str, subscribers: None) -> None:
    put_newsletter(api)
    for day in ("2026-11-24", MONDAY, "2026-11-25"):
        export(api, date=day)
    sends = api.get(SENDS).get_json()["sends"]
    assert [s["id"] for s in sends] == ["2026-11-25", "2026-11-24", MONDAY]
    assert [s["send_time"] for s in sends] == [
        "2026-11-25T09:00:00Z",
        "2026-11-24T09:00:00Z",
        "2026-11-23T09:00:00Z",
    ]


def test_the_default_date_is_today_in_the_schedule_time_zone(
    api: AdminApi, services: Services, clock: FakeClock, campaign: str, subscribers: None
) -> None:
    services.campaigns.create_campaign(CampaignSpec(id="utc"))
    put_newsletter(api)
    put_newsletter(api, "utc", schedule={"time_zone": "UTC", "time": "07:00"})
    clock.now = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 24th in Amsterdam

    amsterdam = export(api)
    assert amsterdam.headers["X-Blanco-Send-Id"] == "2026-11-24"
    _, rows = csv_rows(amsterdam)
    assert {row["bl_send"] for row in rows} == {"2026-11-24"}
    send = api.get(f"{SENDS}/2026-11-24").get_json()
    assert (send["date"], send["send_time"]) == ("2026-11-24", "2026-11-24T09:00:00Z")
    assert send["started_at"] == "2026-11-23T23:30:00Z"

    utc = export(api, "utc", format="jsonl")
    assert utc.headers["X-Blanco-Send-Id"] == MONDAY
    assert api.get(f"/campaigns/utc/sends/{MONDAY}").get_json()["send_time"] == (
        "2026-11-23T07:00:00Z"
    )


def test_the_default_date_can_be_a_day_the_schedule_skips(
    api: AdminApi, clock: FakeClock, redis_client: redis.Redis, campaign: str
) -> None:
    put_newsletter(api, schedule={"weekdays": ["sat"]})
    clock.now = dt.datetime(2026, 11, 28, 23, 30, tzinfo=dt.UTC)  # Saturday in UTC
    response = api.post(SENDS, json={})
    assert error_pointers(response) == [("/date", "date")]
    assert "2026-11-29 is not one of sat" in problem(response, 422)["errors"][0]["detail"]
    assert redis_contents(redis_client, SEND_KEYS) == {}
    clock.now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    assert export(api).headers["X-Blanco-Send-Id"] == "2026-11-28"


def test_an_empty_audience_exports_the_header_only(api: AdminApi, campaign: str) -> None:
    put_newsletter(api)
    response = export(api, date=MONDAY)
    assert response.get_data(as_text=True) == ("recipient_id,bl_token,bl_send,email,first_name\n")
    assert export(api, date=MONDAY, format="jsonl").get_data(as_text=True) == ""
    assert counts(api, MONDAY) == sorted_counts()


def test_a_large_audience_is_streamed_with_everyone_once(
    api: AdminApi, services: Services, campaign: str
) -> None:
    everyone = [f"r{n:05d}" for n in range(1234)]
    services.recipients.upsert_profiles(
        ProfileUpsert(recipient_id=rid, attributes={"consent_email": True, "email": f"{rid}@x.io"})
        for rid in everyone
    )
    put_newsletter(api)
    response = api.post(SENDS, json={"date": MONDAY})
    assert response.status_code == 200
    assert response.is_streamed
    _, rows = csv_rows(response)
    assert [row["recipient_id"] for row in rows] == everyone
    assert all(row["email"] == f"{row['recipient_id']}@x.io" for row in rows)
    assert counts(api, MONDAY) == sorted_counts(considered=1234, audience=1234)


def test_bad_send_requests_and_unknown_sends(api: AdminApi, campaign: str) -> None:
    put_newsletter(api)
    assert error_pointers(api.post(SENDS, json={"format": "xlsx"})) == [("/format", "format")]
    assert error_pointers(api.post(SENDS, json={"date": "tomorrow"})) == [("/date", "date")]
    assert error_pointers(api.post(SENDS, json={"day": MONDAY})) == [("/day", "day")]
    assert api.get(SENDS).get_json() == {"sends": []}
    assert "has no send" in problem(api.get(f"{SENDS}/{MONDAY}"), 404)["detail"]
    problem(api.get(f"{SENDS}/{MONDAY}/holdout"), 404)
    problem(api.get(f"/campaigns/nope/sends/{MONDAY}"), 404)
    assert api.get("/campaigns/nope/sends").get_json() == {"sends": []}


# scopes


NEWSLETTER_OPERATIONS = [op for op in admin_api.operations if op.tag == "newsletters"]
PATH_VALUES = {"campaign_id": "daily", "recipient_id": "anna", "send_id": MONDAY}
BODIES: dict[str, dict[str, Any]] = {
    "/campaigns/{campaign_id}/newsletter": newsletter_document(),
    "/campaigns/{campaign_id}/newsletter/suppressions": {"recipient_ids": ["anna"]},
    "/campaigns/{campaign_id}/sends": {"date": MONDAY},
}


def _url(op: Operation) -> str:
    path = op.path
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_every_newsletter_operation_is_declared_for_admins() -> None:
    assert {(op.method, op.path) for op in NEWSLETTER_OPERATIONS} >= {
        ("PUT", "/campaigns/{campaign_id}/newsletter"),
        ("GET", "/campaigns/{campaign_id}/newsletter"),
        ("DELETE", "/campaigns/{campaign_id}/newsletter"),
        ("POST", "/campaigns/{campaign_id}/newsletter/suppressions"),
        ("DELETE", "/campaigns/{campaign_id}/newsletter/suppressions/{recipient_id}"),
        ("POST", "/campaigns/{campaign_id}/sends"),
        ("GET", "/campaigns/{campaign_id}/sends"),
        ("GET", "/campaigns/{campaign_id}/sends/{send_id}"),
        ("GET", "/campaigns/{campaign_id}/sends/{send_id}/holdout"),
    }
    assert {op.scope for op in NEWSLETTER_OPERATIONS} == {"admin"}


@pytest.mark.parametrize("op", NEWSLETTER_OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_an_ingest_key_is_refused_and_changes_nothing(
    api: AdminApi,
    client: FlaskClient,
    ingest_headers: dict[str, str],
    redis_client: redis.Redis,
    campaign: str,
    subscribers: None,
    op: Operation,
) -> None:
    put_newsletter(api)
    api.post(f"{NEWSLETTER}/suppressions", json={"recipient_ids": ["anna"]})
    export(api, date=MONDAY)
    state = redis_contents(redis_client, CAMPAIGN_KEYS)
    body = BODIES.get(op.path) if op.method in ("PUT", "POST") else None
    for headers, status in ((ingest_headers, 403), ({}, 401)):
        response = AdminApi(client, headers).request(op.method, _url(op), json=body)
        problem(response, status)
    assert redis_contents(redis_client, CAMPAIGN_KEYS) == state
    allowed = api.request(op.method, _url(op), json=body, buffered=True)
    assert allowed.status_code in (200, 201, 204)
