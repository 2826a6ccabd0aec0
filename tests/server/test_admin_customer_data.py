"""Admin API v1: transactions and events (bulk JSON Lines and CSV, single), CSV profiles and
scores, idempotent re-sends, bad-row reports, erasure of the new keys, personas and the
segmentation run."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from server.services import Services
from tests.customer_fixtures import (
    EXPECTED_LIFECYCLE_COUNTS,
    EXPECTED_RFM_COUNTS,
    NOW,
    order_rows,
)
from tests.factories import (
    AdminApi,
    FakeClock,
    csv_file,
    error_pointers,
    jsonl,
    problem,
    redis_contents,
)

NDJSON = "application/x-ndjson"
CSV = "text/csv"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def ingest(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with an ingest-only key."""
    return AdminApi(client, ingest_headers)


def order(order_id: str = "o1", recipient_id: str = "anna", **extra: Any) -> dict[str, Any]:
    """A transaction document."""
    return {
        "recipient_id": recipient_id,
        "order_id": order_id,
        "at": "2026-11-20T12:00:00+01:00",
        "amount": "49.95",
        "currency": "EUR",
        "category": "city_trip",
        **extra,
    }


def errors_of(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(line, pointer) of each reported bad row."""
    return [(e["line"], e["pointer"]) for e in body["errors"]]


# transactions


def test_bulk_transactions_jsonl_stores_good_lines_and_reports_bad_ones(
    ingest: AdminApi, services: Services
) -> None:
    body = jsonl(
        order("o1"),
        order("o2", amount="-5"),
        "{not json",
        "",
        order("o3", currency="XYZ"),
        order("o4", recipient_id="bram", at="2026-11-20T12:00:00"),
        order("o5", recipient_id="bram"),
    )
    response = ingest.post("/transactions/bulk", data=body, content_type=NDJSON)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (6, 2, 4)
    assert errors_of(report) == [(2, "/amount"), (3, ""), (5, "/currency"), (6, "/at")]
    assert "XYZ" in report["errors"][2]["detail"]
    assert [t.order_id for t in services.customer_data.transactions("anna")] == ["o1"]
    assert [t.order_id for t in services.customer_data.transactions("bram")] == ["o5"]


def test_bulk_transactions_csv_reports_file_line_numbers_and_columns(
    ingest: AdminApi, services: Services
) -> None:
    header = ["recipient_id", "order_id", "at", "amount", "currency", "category"]
    data = csv_file(
        header,
        ["anna", "o1", "2026-11-20T12:00:00+01:00", "49.95", "eur", "city_trip"],
        ["anna", "o2", "2026-11-20T12:00:00+01:00", "lots", "EUR", ""],
        [],
        ["anna", "o3", "2026-11-21T12:00:00+01:00", "10", "EUR", "multi\nline"],
        ["anna", "o4", "", "10", "EUR", ""],
        ["anna", "o5", "2026-11-21T12:00:00+01:00", "10"],
        ["bram", "o6", "2026-11-21T12:00:00Z", "0", "USD", ""],
    )
    report = ingest.post("/transactions/bulk", data=data, content_type=CSV).get_json()
    # line 1 header, 2 o1, 3 o2, 4 blank, 5-6 o3 (a quoted cell spans two lines), 7 o4, 8 o5
    assert errors_of(report) == [(3, "/amount"), (7, "/at"), (8, "")]
    assert report["errors"][2]["detail"] == "expected 6 cells, found 4"
    assert (report["received"], report["stored"], report["rejected"]) == (6, 3, 3)
    anna = services.customer_data.transactions("anna")
    assert [(t.order_id, t.currency, t.category) for t in anna] == [
        ("o1", "EUR", "city_trip"),
        ("o3", "EUR", "multi\nline"),
    ]
    assert services.customer_data.transactions("bram")[0].category is None


@pytest.mark.parametrize(
    ("header", "errors"),
    [
        (
            ["recipient_id", "order_id", "at", "amount", "currency", "colour"],
            [(1, "/colour")],
        ),
        (["recipient_id", "order_id", "at", "currency"], [(1, "/amount")]),
        (
            ["recipient_id", "order_id", "at", "amount", "currency", "amount"],
            [(1, "/amount")],
        ),
    ],
)
def test_a_bad_csv_header_stores_nothing(
    ingest: AdminApi, redis_client: redis.Redis, header: list[str], errors: list[tuple[int, str]]
) -> None:
    data = csv_file(header, ["anna", "o1", "2026-11-20T12:00:00Z", "1", "EUR", "x"][: len(header)])
    report = ingest.post("/transactions/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == errors
    assert (report["received"], report["stored"], report["rejected"]) == (0, 0, 1)
    assert redis_contents(redis_client, "blanco:rcp:*") == {}


def test_resending_the_same_files_changes_nothing(
    ingest: AdminApi, redis_client: redis.Redis
) -> None:
    transactions = jsonl(*order_rows())
    header = ["recipient_id", "event_id", "type", "at", "channel", "page"]
    events_csv = csv_file(
        header,
        ["anna", "", "site_visit", "2026-11-20T12:00:00Z", "web", "/amsterdam"],
        ["anna", "cs-1", "cs_contact", "2026-11-21T12:00:00Z", "phone", ""],
        ["bram", "", "custom:quiz_done", "2026-11-21T12:00:00Z", "", "/quiz"],
    )
    events_jsonl = jsonl(
        {"recipient_id": "anna", "type": "app_login", "at": "2026-11-22T08:00:00+01:00"}
    )
    # files that carry their own update times (without them, an upsert stamps its own time)
    profiles = csv_file(
        ["recipient_id", "first_name", "age", "updated_at"],
        ["anna", "Anna", "34", "2026-11-22T08:00:00+01:00"],
    )
    scores = jsonl(
        {
            "recipient_id": "anna",
            "scores": {"travel": {"value": 0.8, "computed_at": "2026-11-22T08:00:00Z"}},
        }
    )

    def send_all() -> None:
        for path, data, media in [
            ("/transactions/bulk", transactions, NDJSON),
            ("/events/bulk", events_csv, CSV),
            ("/events/bulk", events_jsonl, NDJSON),
            ("/profiles/bulk", profiles, CSV),
            ("/scores/bulk", scores, NDJSON),
        ]:
            report = ingest.post(path, data=data, content_type=media).get_json()
            assert report["rejected"] == 0, report

    send_all()
    state = redis_contents(redis_client, "blanco:rcp:*")
    assert len(state) > 10
    send_all()
    assert redis_contents(redis_client, "blanco:rcp:*") == state


# events


def test_bulk_events_csv_types_attribute_cells(ingest: AdminApi, services: Services) -> None:
    data = csv_file(
        ["recipient_id", "type", "at", "channel", "nights", "price", "member", "postcode:str"],
        ["anna", "booking", "2026-11-20T12:00:00Z", "web", "3", "199.5", "true", "0123"],
        ["anna", "cs_contact", "2026-11-21T12:00:00Z", "phone", "", "", "", ""],
        ["anna", "visit", "2026-11-21T12:00:00Z", "web", "", "", "", ""],
    )
    report = ingest.post("/events/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == [(4, "/type")]
    found = services.customer_data.recent_events("anna")
    assert [e.type for e in found] == ["cs_contact", "booking"]
    assert found[1].attributes == {"nights": 3, "price": 199.5, "member": True, "postcode": "0123"}
    assert found[0].attributes == {}


def test_one_event_by_api_is_seen_at_once_and_idempotent(
    ingest: AdminApi, redis_client: redis.Redis
) -> None:
    event = {"type": "cs_contact", "at": "2026-11-22T10:00:00+01:00", "channel": "phone"}
    response = ingest.post("/recipients/anna/events", json=event)
    assert response.status_code == 201
    stored = response.get_json()
    assert stored["key"].startswith("#")
    assert stored["recipient_id"] == "anna"
    state = redis_contents(redis_client)
    assert ingest.post("/recipients/anna/events", json=event).get_json() == stored
    assert redis_contents(redis_client) == state
    listed = ingest.get("/recipients/anna/events").get_json()
    assert listed == {
        "recipient_id": "anna",
        "events": [
            {
                "key": stored["key"],
                "type": "cs_contact",
                "at": "2026-11-22T10:00:00+01:00",
                "channel": "phone",
                "attributes": {},
            }
        ],
    }
    assert error_pointers(ingest.post("/recipients/anna/events", json={"type": "x"})) == [
        ("/type", "type"),
        ("/at", "at"),
    ]
    other = ingest.post("/recipients/anna/events", json={**event, "recipient_id": "bram"})
    problem(other, 422)


def test_events_since_and_limit(ingest: AdminApi) -> None:
    for day in (1, 10, 20):
        ingest.post(
            "/recipients/anna/events",
            json={
                "type": "site_visit",
                "at": f"2026-11-{day:02d}T10:00:00Z",
                "event_id": f"v{day}",
            },
        )
    since = ingest.get("/recipients/anna/events", query_string={"since": "2026-11-05T00:00:00Z"})
    assert [e["event_id"] for e in since.get_json()["events"]] == ["v20", "v10"]
    limited = ingest.get("/recipients/anna/events", query_string={"limit": "1"})
    assert [e["event_id"] for e in limited.get_json()["events"]] == ["v20"]
    bad_since = {"since": "2026-11-05"}
    assert error_pointers(ingest.get("/recipients/anna/events", query_string=bad_since)) == [
        ("/since", "since")
    ]
    for limit in ("0", "x", "100000"):
        response = ingest.get("/recipients/anna/events", query_string={"limit": limit})
        assert error_pointers(response) == [("/limit", "limit")]
    problem(ingest.get("/recipients/a%20b/events"), 422)


def test_get_transactions(ingest: AdminApi) -> None:
    ingest.post("/transactions/bulk", data=jsonl(order("o2"), order("o1")), content_type=NDJSON)
    found = ingest.get("/recipients/anna/transactions").get_json()
    assert found["recipient_id"] == "anna"
    assert [t["order_id"] for t in found["transactions"]] == ["o1", "o2"]
    assert found["transactions"][0] == {
        "order_id": "o1",
        "type": "order",
        "at": "2026-11-20T12:00:00+01:00",
        "amount": "49.95",
        "currency": "EUR",
        "category": "city_trip",
    }
    assert ingest.get("/recipients/nobody/transactions").get_json()["transactions"] == []


@pytest.mark.parametrize("path", ["/transactions/bulk", "/events/bulk"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/csv"])
def test_bulk_with_another_type_is_unsupported(
    ingest: AdminApi, redis_client: redis.Redis, path: str, content_type: str
) -> None:
    body = problem(ingest.post(path, data=jsonl(order()), content_type=content_type), 415)
    assert "text/csv" in body["detail"]
    assert redis_contents(redis_client, "blanco:rcp:*") == {}


# CSV profiles and scores


def test_profiles_csv_types_cells_and_skips_empty_ones(ingest: AdminApi) -> None:
    ingest.put("/recipients/anna/profile", json={"attributes": {"city": "Utrecht"}})
    data = csv_file(
        ["recipient_id", "first_name", "age", "vip", "city", "zip:str", "segments", "updated_at"],
        ["anna", "Anna", "34", "false", "", "01234", "b; a", "2026-01-02T03:04:05+00:00"],
        ["bram", "Bram", "007", "TRUE", "Delft", "2611", "", ""],
        ["chloe", "", "", "", "", "", "", "yesterday"],
        ["", "Nobody", "", "", "", "", "", ""],
    )
    report = ingest.post("/profiles/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == [(4, "/updated_at"), (5, "/recipient_id")]
    anna = ingest.get("/recipients/anna/profile").get_json()
    assert anna["attributes"] == {
        "first_name": "Anna",
        "age": 34,
        "vip": False,
        "city": "Utrecht",
        "zip": "01234",
    }
    assert anna["segments"] == ["a", "b"]
    assert anna["updated_at"] == "2026-01-02T03:04:05+00:00"
    bram = ingest.get("/recipients/bram/profile").get_json()["attributes"]
    assert bram == {
        "first_name": "Bram",
        "age": "007",
        "vip": "TRUE",
        "city": "Delft",
        "zip": "2611",
    }


def test_profiles_csv_refuses_bad_attribute_columns(ingest: AdminApi) -> None:
    data = csv_file(["recipient_id", "First Name"], ["anna", "Anna"])
    report = ingest.post("/profiles/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == [(1, "/First Name")]


def test_scores_csv(ingest: AdminApi) -> None:
    data = csv_file(
        ["recipient_id", "travel_propensity", "affinity:city_trip", "model_version", "computed_at"],
        ["anna", "0.82", "0.4", "v7", "2026-11-23T06:00:00Z"],
        ["bram", "high", "", "", "2026-11-23T06:00:00Z"],
        ["chloe", "", "", "v1", "2026-11-23T06:00:00Z"],
    )
    # a UTF-8 byte order mark, as spreadsheets write, is not part of the first column's name
    report = ingest.post("/scores/bulk", data="\ufeff".encode() + data, content_type=CSV).get_json()
    assert errors_of(report) == [(3, "/travel_propensity"), (4, "")]
    scores = ingest.get("/recipients/anna/scores").get_json()["scores"]
    assert scores["travel_propensity"]["value"] == 0.82
    assert scores["affinity:city_trip"]["model_version"] == "v7"


def test_scores_without_a_computed_at_are_refused_at_that_column(ingest: AdminApi) -> None:
    data = csv_file(["recipient_id", "travel_propensity"], ["anna", "0.82"])
    report = ingest.post("/scores/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == [(2, "/computed_at")]  # the column the file lacks
    assert "undated: travel_propensity" in report["errors"][0]["detail"]
    missing = ingest.put("/recipients/anna/scores", json={"scores": {"travel_propensity": 0.8}})
    assert missing.status_code == 422
    assert missing.get_json()["errors"][0]["pointer"] == "/computed_at"
    assert ingest.get("/recipients/anna/scores").status_code == 404  # nothing stored
    row = {"recipient_id": "anna", "computed_at": "2026-11-22T06:00:00Z", "scores": {"t": 0.8}}
    ingest.post("/scores/bulk", data=jsonl(row), content_type="application/x-ndjson")
    stored = ingest.get("/recipients/anna/scores").get_json()["scores"]["t"]
    assert stored["computed_at"].startswith("2026-11-22T06:00:00")  # the row's, not today


def test_a_bad_computed_at_in_a_scores_csv_points_at_its_own_column(ingest: AdminApi) -> None:
    data = csv_file(
        ["recipient_id", "travel_propensity", "computed_at"],
        ["anna", "0.82", "yesterday"],
        ["bram", "0.5", "2026-11-20T08:00:00"],  # no offset
        ["chloe", "0.5", "2026-11-20T08:00:00Z"],
    )
    report = ingest.post("/scores/bulk", data=data, content_type=CSV).get_json()
    assert errors_of(report) == [(2, "/computed_at"), (3, "/computed_at")]
    assert report["stored"] == 1


# erasure


def test_erase_removes_transactions_and_events(
    api: AdminApi, ingest: AdminApi, redis_client: redis.Redis
) -> None:
    for rid in ("anna", "bram"):
        ingest.post("/transactions/bulk", data=jsonl(order(recipient_id=rid)), content_type=NDJSON)
        ingest.post(
            "/recipients/" + rid + "/events",
            json={"type": "site_visit", "at": "2026-11-22T10:00:00Z"},
        )
        ingest.put(f"/recipients/{rid}/profile", json={"attributes": {"a": 1}})
    api.post("/segmentation/run", json={})
    anna_keys = set(redis_client.scan_iter(match="*anna*"))
    assert {keys.transactions("anna"), keys.events("anna"), keys.events_by_time("anna")} <= (
        anna_keys
    )
    for key in anna_keys:
        assert redis_client.ttl(key) > 0, key
    assert api.delete("/recipients/anna").status_code == 204
    assert list(redis_client.scan_iter(match="*anna*", count=1000)) == []
    assert len(list(redis_client.scan_iter(match="*bram*"))) == len(anna_keys)


# personas and the segmentation run


def test_personas_round_trip(api: AdminApi, ingest: AdminApi) -> None:
    assert api.get("/personas").get_json() == {"rules": []}
    rules = {
        "rules": [
            {"persona": "vip", "when": {"segment": "rfm:champions"}},
            {"persona": "explorer"},
        ]
    }
    response = api.put("/personas", json=rules)
    assert response.status_code == 200
    assert response.get_json() == rules
    assert api.get("/personas").get_json() == rules
    assert error_pointers(api.put("/personas", json={"rules": [{"persona": "A B"}]})) == [
        ("/rules/0/persona", "rules.0.persona")
    ]
    problem(ingest.get("/personas"), 403)
    problem(ingest.post("/segmentation/run", json={}), 403)


def test_persona_rules_with_aliased_operators_read_back_and_run(api: AdminApi) -> None:
    rules = {
        "rules": [
            {"persona": "abroad", "when": {"not": {"attr": "country", "in": ["NL", "BE"]}}},
            {"persona": "home"},
        ]
    }
    assert api.put("/personas", json=rules).get_json() == rules
    assert api.get("/personas").get_json() == rules
    api.put("/recipients/anna/profile", json={"attributes": {"country": "FR"}})
    assert api.post("/segmentation/run", json={}).get_json()["persona"] == {"abroad": 1}


def test_segmentation_run_uses_the_clock_and_reports_counts(
    api: AdminApi, ingest: AdminApi, clock: FakeClock, services: Services
) -> None:
    assert clock.now == NOW
    ingest.post("/transactions/bulk", data=jsonl(*order_rows()), content_type=NDJSON)
    ingest.put("/recipients/p01/profile", json={"attributes": {"first_name": "Piet"}})
    api.put(
        "/personas",
        json={"rules": [{"persona": "vip", "when": {"attr": "rfm_segment", "eq": "champions"}}]},
    )
    response = api.post("/segmentation/run", json={})
    assert response.status_code == 200
    summary = response.get_json()
    assert summary["ran_at"] == NOW.isoformat()
    assert (summary["recipients"], summary["customers"], summary["changed"]) == (11, 10, 11)
    assert summary["rfm"] == EXPECTED_RFM_COUNTS
    assert summary["lifecycle"] == EXPECTED_LIFECYCLE_COUNTS
    assert summary["persona"] == {"vip": 2}
    assert summary["duration_seconds"] >= 0
    c01 = ingest.get("/recipients/c01/profile").get_json()
    assert c01["attributes"]["persona"] == "vip"
    assert c01["segments"] == ["lifecycle:active", "persona:vip", "rfm:champions"]
    clock.advance(days=400)
    later = api.post("/segmentation/run", json={}).get_json()
    assert later["lifecycle"] == {"lapsed": 10, "prospect": 1}
    as_of = api.post("/segmentation/run", json={"at": NOW.isoformat()}).get_json()
    assert as_of["lifecycle"] == EXPECTED_LIFECYCLE_COUNTS
    assert error_pointers(api.post("/segmentation/run", json={"at": "2026-11-23T09:30:00"})) == [
        ("/at", "at")
    ]


def test_a_refund_is_kept_apart_and_does_not_move_the_last_order(
    ingest: AdminApi, redis_client: redis.Redis
) -> None:
    profile = {"recipient_id": "anna", "attributes": {"first_name": "Anna"}}
    ingest.post("/profiles/bulk", data=json.dumps(profile), content_type=NDJSON)
    refund = order("o1-r1", type="refund", at="2026-11-22T09:00:00+01:00", amount="20")
    body = "\n".join([json.dumps(order("o1")), json.dumps(refund)])
    report = ingest.post("/transactions/bulk", data=body, content_type=NDJSON).get_json()
    assert (report["stored"], report["rejected"]) == (2, 0)
    found = ingest.get("/recipients/anna/transactions").get_json()["transactions"]
    assert [(t["order_id"], t["type"], t["amount"]) for t in found] == [
        ("o1", "order", "49.95"),
        ("o1-r1", "refund", "20"),
    ]
    placed = dt.datetime.fromisoformat("2026-11-20T12:00:00+01:00")
    assert redis_client.hget(keys.profile("anna"), "_last_order") == str(int(placed.timestamp()))
    negative = ingest.post(
        "/transactions/bulk", data=json.dumps(order("o2", amount="-5")), content_type=NDJSON
    ).get_json()
    assert negative["errors"][0]["pointer"] == "/amount"
    csv_body = (
        "recipient_id,order_id,type,at,amount,currency\n"
        "bram,b1-r,refund,2026-11-21T10:00:00Z,5,EUR\n"
    )
    assert (
        ingest.post("/transactions/bulk", data=csv_body, content_type=CSV).get_json()["stored"] == 1
    )
