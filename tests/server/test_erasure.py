"""Erasing a recipient: nothing of them is left in Redis, their tokens stop working, their id
cannot come back through ingest, and the erasure itself is logged without personal data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.conversions.click_refs import ClickRefsErasure
from models.erasure import Eraser, RecipientKeys, erasure_steps
from models.measurement.event_stream import campaign_event_entries
from models.newsletter.sends import SendMemberships
from models.recipients.recipient_store import RecipientStore
from models.recipients.tombstones import ERASED_DETAIL, Tombstones
from models.recipients.upserts import ProfileUpsert
from models.storage import keys
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    FakeClock,
    command_calls,
    corner_color,
    hex_rgb,
    jsonl,
    landing,
    problem,
    raw_client,
    redis_contents,
    reset_command_stats,
    store_block,
    variant,
)
from tests.newsletter_fixtures import item, store_newsletter

RID = "anna.jansen-4711@example.com"
LAST_NAME = "Jansen-Oudkerk"
NDJSON = "application/x-ndjson"
PERSONAL = "#0B7A75"
GREETING = variant(
    "loyal",
    {"all": [{"segment": "loyal"}, {"score": "purchase_propensity", "gte": 0.5}]},
    text="Hi {{ first_name }} {{ last_name }}",
    background=PERSONAL,
)


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key (named "tests")."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def everything(redis_url: str) -> Iterator[redis.Redis]:
    """A client that reads every value, binary ones (HyperLogLogs, images) included."""
    client = raw_client(redis_url, decode=True, encoding_errors="backslashreplace")
    yield client
    client.close()


def token(services: Services, recipient_id: str = RID) -> dict[str, str]:
    """The query string carrying the recipient's signed token."""
    return {"r": services.signer.sign(recipient_id)}


def first_name_only(recipient_id: str) -> ProfileUpsert:
    """A profile upsert with just a first name."""
    return ProfileUpsert(recipient_id=recipient_id, attributes={"first_name": "Anna"})


def stored_text(client: redis.Redis) -> str:
    """Every key name and value in the database, as one searchable text."""
    return repr(redis_contents(client))


def push_everything(api: AdminApi, client: FlaskClient, services: Services) -> None:
    """Profile, segments, scores, transactions, events, an open (decision), a click and an
    order credited to it."""
    store_block(services, [GREETING])
    profile = {
        "attributes": {"first_name": "Anna", "last_name": LAST_NAME, "email": RID},
        "segments": ["loyal"],
        "source": "crm",
    }
    assert api.put(f"/recipients/{RID}/profile", json=profile).status_code == 200
    scores = {
        "computed_at": "2026-11-23T06:00:00Z",
        "scores": {"purchase_propensity": 0.9, "churn_risk": 0.1},
    }
    assert api.put(f"/recipients/{RID}/scores", json=scores).status_code == 200
    orders = jsonl(
        *(
            {
                "recipient_id": RID,
                "order_id": f"{RID}-o{n}",
                "at": f"2026-11-{10 + n}T12:00:00+01:00",
                "amount": "99.50",
                "currency": "EUR",
                "category": "city_trip",
            }
            for n in range(2)
        )
    )
    assert (
        api.post("/transactions/bulk", data=orders, content_type=NDJSON).get_json()["stored"] == 2
    )
    events = jsonl(
        {
            "recipient_id": RID,
            "event_id": f"{RID}-visit",
            "type": "site_visit",
            "at": "2026-11-22T10:00:00+01:00",
            "attributes": {"page": f"/account/{RID}"},
        }
    )
    assert api.post("/events/bulk", data=events, content_type=NDJSON).get_json()["stored"] == 1
    contact = {"type": "cs_contact", "at": "2026-11-22T11:00:00+01:00", "channel": "phone"}
    assert api.post(f"/recipients/{RID}/events", json=contact).status_code == 201
    assert api.post("/segmentation/run", json={}).status_code == 200
    opened = client.get("/i/daily/hero.png", query_string=token(services))
    assert corner_color(opened.data) == hex_rgb(PERSONAL)
    assert client.get("/c/daily/hero", query_string=token(services)).status_code == 302
    bought = {"recipient_id": RID, "order_id": f"{RID}-o9", "amount": "12", "currency": "EUR"}
    credited = api.post("/conversions", json=bought).get_json()
    assert credited["attribution"]["basis"] == "click"  # money counted under a pseudonym


# nothing left


def test_erase_leaves_the_id_nowhere_in_any_key_or_value(
    api: AdminApi, client: FlaskClient, services: Services, everything: redis.Redis
) -> None:
    push_everything(api, client, services)
    before = stored_text(everything)
    assert RID in before
    assert LAST_NAME in before
    assert keys.decisions(RID) in redis_contents(everything)
    stream = campaign_event_entries(everything, "daily")
    assert [e["recipient"] for _, e in stream] == [services.signer.pseudonym(RID)] * 2

    response = api.delete(f"/recipients/{RID}")
    assert response.status_code == 204

    keys_left = list(everything.scan_iter(match="*", count=1000))
    assert keys_left  # configuration, measurements, the tombstone and the audit log stay
    assert not [key for key in keys_left if RID in key]
    after = stored_text(everything)
    assert RID not in after
    assert LAST_NAME not in after
    assert "Anna" not in after
    order_key = services.signer.order_key(RID, f"{RID}-o9")
    assert order_key in after  # the counters name the order by a keyed hash only
    problem(api.get(f"/recipients/{RID}/profile"), 404)
    problem(api.get(f"/recipients/{RID}/scores"), 404)
    assert api.get(f"/recipients/{RID}/transactions").get_json()["transactions"] == []
    assert api.get(f"/recipients/{RID}/events").get_json()["events"] == []


def test_erase_leaves_other_recipients_alone(
    api: AdminApi, client: FlaskClient, services: Services
) -> None:
    push_everything(api, client, services)
    api.put("/recipients/bram/profile", json={"attributes": {"first_name": "Bram"}})
    assert api.delete(f"/recipients/{RID}").status_code == 204
    assert api.get("/recipients/bram/profile").get_json()["attributes"] == {"first_name": "Bram"}
    assert (
        api.put(
            "/recipients/bram/scores",
            json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 1}},
        ).status_code
        == 200
    )


# tokens stop working


def test_an_erased_recipients_token_shows_and_records_nothing(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    everything: redis.Redis,
) -> None:
    push_everything(api, client, services)
    api.delete(f"/recipients/{RID}")
    events_before = len(campaign_event_entries(redis_client, "daily"))
    counts_before = redis_contents(everything, "blanco:ev:*")

    opened = client.get("/i/daily/hero.png", query_string=token(services))
    assert opened.status_code == 200
    assert corner_color(opened.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert opened.headers["X-Blanco-Fallback"] == "no verified recipient"
    clicked = client.get("/c/daily/hero", query_string=token(services))
    assert landing(clicked) == FALLBACK_URL

    assert len(campaign_event_entries(redis_client, "daily")) == events_before
    assert redis_contents(everything, "blanco:ev:*") == counts_before
    assert list(redis_client.scan_iter(match=f"*{RID}*")) == []


def test_tokens_stay_dead_even_when_data_for_the_id_reappears(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    store_block(services, [variant("hi", None, text="Hi {{ first_name }}", background=PERSONAL)])
    services.recipients.upsert_profiles([first_name_only(RID)])
    assert corner_color(client.get("/i/daily/hero.png", query_string=token(services)).data) == (
        hex_rgb(PERSONAL)
    )
    services.eraser.erase(RID, api_key_id="k", api_key_name="ops", request_id=None, now=clock.now)
    # A copy of the data arrives by a path that does not check (an old backup, a manual write).
    unchecked = RecipientStore(redis_client, ttl_seconds=60)  # no tombstones
    unchecked.upsert_profiles([first_name_only(RID)])
    events_before = len(campaign_event_entries(redis_client, "daily"))
    opened = client.get("/i/daily/hero.png", query_string=token(services))
    assert corner_color(opened.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert landing(client.get("/c/daily/hero", query_string=token(services))) == (FALLBACK_URL)
    assert not redis_client.exists(keys.decisions(RID))
    assert len(campaign_event_entries(redis_client, "daily")) == events_before


def test_the_decision_explanation_names_the_erasure(
    api: AdminApi, services: Services, clock: FakeClock
) -> None:
    store_block(services, [variant("hi", None)])
    services.recipients.upsert_profiles([first_name_only(RID)])
    services.eraser.erase(RID, api_key_id="k", api_key_name="ops", request_id=None, now=clock.now)
    explained = api.get(f"/campaigns/daily/blocks/hero/decision?recipient_id={RID}").get_json()
    assert (explained["variant_id"], explained["reason"]) == (None, "erased recipient")


# an erased id cannot come back


def test_the_next_bulk_import_refuses_the_erased_id_per_row(
    api: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    api.put(f"/recipients/{RID}/profile", json={"attributes": {"first_name": "Anna"}})
    api.delete(f"/recipients/{RID}")
    body = jsonl(
        {"recipient_id": "bram", "attributes": {"first_name": "Bram"}},
        {"recipient_id": RID, "attributes": {"first_name": "Anna"}},
        {"recipient_id": "chloe", "attributes": {"first_name": "Chloé"}},
    )
    report = api.post("/profiles/bulk", data=body, content_type=NDJSON).get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (3, 2, 1)
    assert report["errors"] == [{"line": 2, "pointer": "/recipient_id", "detail": ERASED_DETAIL}]
    assert list(redis_client.scan_iter(match=f"*{RID}*")) == []
    assert api.get("/recipients/chloe/profile").status_code == 200


@pytest.mark.parametrize(
    ("path", "rows", "content_type"),
    [
        (
            "/scores/bulk",
            [{"recipient_id": RID, "computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 0.5}}],
            NDJSON,
        ),
        (
            "/transactions/bulk",
            "recipient_id,order_id,at,amount,currency\n"
            "bram,o1,2026-11-20T12:00:00+01:00,10,EUR\n"
            f"{RID},o2,2026-11-20T12:00:00+01:00,10,EUR\n",
            "text/csv",
        ),
        (
            "/events/bulk",
            [{"recipient_id": RID, "type": "site_visit", "at": "2026-11-20T12:00:00+01:00"}],
            NDJSON,
        ),
        ("/profiles/bulk", f"recipient_id,first_name\n{RID},Anna\n", "text/csv"),
    ],
)
def test_every_bulk_kind_refuses_the_erased_id(
    api: AdminApi,
    redis_client: redis.Redis,
    path: str,
    rows: list[dict[str, Any]] | str,
    content_type: str,
) -> None:
    api.delete(f"/recipients/{RID}")
    body = rows.encode() if isinstance(rows, str) else jsonl(*rows)
    report = api.post(path, data=body, content_type=content_type).get_json()
    assert report["rejected"] == 1
    (error,) = report["errors"]
    assert error["pointer"] == "/recipient_id"
    assert "erased" in error["detail"]
    assert error["line"] == (
        3 if path == "/transactions/bulk" else 2 if content_type == "text/csv" else 1
    )
    assert list(redis_client.scan_iter(match=f"*{RID}*")) == []


def test_single_writes_for_the_erased_id_are_a_conflict(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    api.delete(f"/recipients/{RID}")
    refused = [
        api.put(f"/recipients/{RID}/profile", json={"attributes": {"first_name": "Anna"}}),
        api.put(
            f"/recipients/{RID}/scores",
            json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 0.5}},
        ),
        api.post(
            f"/recipients/{RID}/events",
            json={"type": "site_visit", "at": "2026-11-20T12:00:00+01:00"},
        ),
    ]
    for response in refused:
        assert problem(response, 409)["detail"] == ERASED_DETAIL
    assert list(redis_client.scan_iter(match=f"*{RID}*")) == []


def test_ingest_checks_tombstones_once_per_chunk(api: AdminApi, redis_client: redis.Redis) -> None:
    api.delete("/recipients/someone")
    reset_command_stats(redis_client)
    body = jsonl(*({"recipient_id": f"r{n}", "attributes": {"n": n}} for n in range(4500)))
    report = api.post("/profiles/bulk", data=body, content_type=NDJSON).get_json()
    assert report["stored"] == 4500
    calls = command_calls(redis_client, "smismember")
    # per chunk of 2,000 rows: one per tombstone set the chunk's ids fall in (beside their
    # own keys), all in one round trip; the set of Blanco 0.1 is read once, checked in memory
    chunks = [range(start, min(start + 2000, 4500)) for start in range(0, 4500, 2000)]
    sets = sum(len({keys.erased_marks(f"r{n}") for n in chunk}) for chunk in chunks)
    assert calls == sets
    assert command_calls(redis_client, "smembers") <= 1


# the audit log


def test_each_erasure_is_logged_without_personal_data(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    clock: FakeClock,
) -> None:
    push_everything(api, client, services)
    held = [key for key in keys.recipient_keys(RID) if redis_client.exists(key)]
    slot = keys.recipient_slot(RID)
    held += [keys.click_ref(slot, c) for c in redis_client.zrange(keys.click_ids(RID), 0, -1)]
    erased_at = clock.now
    first = api.delete(f"/recipients/{RID}", headers={"X-Request-ID": "erase-1"})
    assert first.status_code == 204
    clock.advance(minutes=5)
    api.delete(f"/recipients/{RID}", headers={"X-Request-ID": "erase-2"})  # again: harmless

    listed = api.get("/audit/erasures")
    assert listed.status_code == 200
    entries = listed.get_json()
    assert [e["request_id"] for e in entries] == ["erase-2", "erase-1"]  # newest first
    newest, oldest = entries
    key = services.api_keys.list()[0]
    assert set(oldest) == {"id", "at", "api_key_id", "api_key_name", "request_id", "keys_removed"}
    assert (oldest["api_key_id"], oldest["api_key_name"]) == (key.id, "tests")
    assert dt.datetime.fromisoformat(oldest["at"]) == erased_at
    assert oldest["keys_removed"] == len(held) >= 7
    assert newest["keys_removed"] == 0
    assert api.get("/audit/erasures?limit=1").get_json() == [newest]

    logged = repr(redis_contents(redis_client, keys.ERASURE_AUDIT)) + listed.get_data(as_text=True)
    assert RID not in logged
    for derived in [services.signer.pseudonym(RID), *services.eraser.tombstones.marks(RID)]:
        assert derived not in logged


def test_the_audit_log_is_bounded(services: Services, clock: FakeClock) -> None:
    eraser = Eraser(services.redis, services.eraser.tombstones, audit_max_length=10)
    for n in range(500):
        eraser.erase(f"r{n}", api_key_id="k", api_key_name="ops", request_id=None, now=clock.now)
    assert services.redis.xlen(keys.ERASURE_AUDIT) < 500
    assert len(eraser.audit(limit=5)) == 5


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1"])
def test_audit_limit_is_checked(api: AdminApi, limit: str) -> None:
    body = problem(api.get(f"/audit/erasures?limit={limit}"), 422)
    assert body["errors"][0]["pointer"] == "/limit"


def test_the_audit_log_needs_an_admin_key(
    client: FlaskClient, ingest_headers: dict[str, str]
) -> None:
    problem(AdminApi(client, ingest_headers).get("/audit/erasures"), 403)
    problem(client.get("/api/v1/audit/erasures"), 401)


# the parts


def test_tombstones_hold_no_id_and_survive_key_rotation(redis_client: redis.Redis) -> None:
    old = Tombstones(redis_client, [SIGNING_KEY])
    old.add(RID)
    stored = redis_contents(redis_client)
    assert list(stored) == [keys.erased_marks(RID)]
    assert RID not in repr(stored)
    assert redis_client.ttl(keys.erased_marks(RID)) == -1  # kept: an erased id stays refused
    rotated = Tombstones(redis_client, ["a-newer-signing-key-0123456789abcdef0123", SIGNING_KEY])
    assert rotated.is_erased(RID)
    assert rotated.erased_among([RID, "bram"]) == {RID}
    assert not rotated.is_erased("bram")
    assert rotated.erased_among([]) == set()
    assert len(set(rotated.marks(RID))) == 2


def test_erasure_steps_are_one_list_and_counted(services: Services, clock: FakeClock) -> None:
    assert [type(step) for step in erasure_steps()] == [
        ClickRefsErasure,
        RecipientKeys,
        SendMemberships,
    ]

    class SendMembers:
        """A further step, as a store outside the recipient's keys would add it."""

        name = "send_members"

        def __init__(self) -> None:
            self.erased: list[str] = []

        def erase(self, client: redis.Redis, recipient_id: str) -> int:
            self.erased.append(recipient_id)
            return int(client.srem("blanco:test:members", recipient_id))

    services.redis.sadd("blanco:test:members", RID, "bram")
    services.recipients.upsert_profiles([first_name_only(RID)])
    extra = SendMembers()
    eraser = Eraser(services.redis, services.eraser.tombstones, [*erasure_steps(), extra])
    record = eraser.erase(RID, api_key_id="k", api_key_name="ops", request_id="r1", now=clock.now)
    assert extra.erased == [RID]
    assert record.keys_removed == 1 + 1  # the profile and the set member
    assert services.redis.smembers("blanco:test:members") == {"bram"}
    assert eraser.audit() == [record]


def test_the_services_keep_about_the_newest_100_000_audit_entries(services: Services) -> None:
    assert services.eraser.audit_max_length == 100_000


def test_an_erased_id_gets_no_token_and_no_suppression(
    api: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    store_newsletter(services, [item("x")])
    services.recipients.upsert_profiles([first_name_only(RID)])
    assert api.get(f"/recipients/{RID}/token").status_code == 200
    assert api.delete(f"/recipients/{RID}").status_code in (200, 204)
    gone = api.get(f"/recipients/{RID}/token")
    assert gone.status_code == 410
    assert (
        gone.get_json()["detail"]
        == f"recipient {RID!r} was erased: Blanco issues no token for them"
    )
    added = api.post(
        "/campaigns/daily/newsletter/suppressions", json={"recipient_ids": [RID, "bram"]}
    )
    assert added.get_json() == {"added": 1, "erased": 1, "suppressed": 1}
    assert redis_client.smembers(keys.suppressions("daily")) == {"bram"}
