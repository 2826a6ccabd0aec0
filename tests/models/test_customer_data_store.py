"""Transactions and events: validation, natural keys, idempotent storage, the event cap, TTLs
and the events-by-time index the decision engine reads. Real Redis."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from models.recipients.customer_data import (
    CustomerEvent,
    EventRef,
    Transaction,
    last_event_times,
    parse_event_index,
)
from models.recipients.customer_data_store import (
    CustomerDataStore,
    queue_recent_event_index,
    recent_event_keys,
)
from models.storage import keys
from models.storage.batch import Batch
from tests.factories import redis_contents

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
TTL = 3600


@pytest.fixture
def store(redis_client: redis.Redis) -> CustomerDataStore:
    """A store keeping at most five events per recipient."""
    return CustomerDataStore(redis_client, ttl_seconds=TTL, events_kept=5)


def transaction(order_id: str = "o1", recipient_id: str = "anna", **extra: Any) -> Transaction:
    """A valid transaction; ``extra`` overrides fields."""
    document: dict[str, Any] = {
        "recipient_id": recipient_id,
        "order_id": order_id,
        "at": NOW.isoformat(),
        "amount": "12.50",
        "currency": "EUR",
        "category": "city_trip",
        **extra,
    }
    return Transaction.model_validate(document)


def event(minutes_ago: int = 0, kind: str = "site_visit", **extra: Any) -> CustomerEvent:
    """A valid event ``minutes_ago`` before NOW; ``extra`` overrides fields."""
    document: dict[str, Any] = {
        "recipient_id": "anna",
        "type": kind,
        "at": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "channel": "web",
        **extra,
    }
    return CustomerEvent.model_validate(document)


# validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.23456"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"at": "2026-11-23T09:30:00"}, "at"),
        ({"order_id": "has space"}, "order_id"),
        ({"recipient_id": "a b"}, "recipient_id"),
        ({"shipping": 4}, "shipping"),
    ],
)
def test_invalid_transactions_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        transaction(**change)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_currency_is_upper_cased_and_amount_exact() -> None:
    found = transaction(currency="usd", amount=19.99)
    assert found.currency == "USD"
    assert found.amount == Decimal("19.99")


@pytest.mark.parametrize(
    "kind", ["site_visit", "app_login", "store_visit", "cs_contact", "booking", "custom:quiz_done"]
)
def test_known_and_custom_event_types(kind: str) -> None:
    assert event(kind=kind).type == kind


@pytest.mark.parametrize("kind", ["visit", "custom:", "custom:Quiz", "custom:a b", "CS_CONTACT"])
def test_other_event_types_are_refused(kind: str) -> None:
    with pytest.raises(ValidationError, match="custom:<name>"):
        event(kind=kind)


def test_event_key_is_the_id_or_a_hash_of_the_content() -> None:
    assert event(event_id="ev-1").key == "ev-1"
    hashed = event().key
    assert hashed.startswith("#")
    assert len(hashed) == 33
    same_moment_elsewhere = event(at="2026-11-23T10:30:00+01:00")
    assert same_moment_elsewhere.key == hashed
    assert event(channel="app").key != hashed
    assert event(attributes={"page": "/x"}).key != hashed
    assert event(kind="booking").key != hashed
    with pytest.raises(ValidationError):
        event(event_id="#" + hashed[1:])


# transactions


def test_transactions_are_idempotent_by_order_id(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    orders = [transaction("o1"), transaction("o2", at="2026-11-01T08:00:00+01:00")]
    assert store.add_transactions(orders) == 2
    first = redis_contents(redis_client)
    store.add_transactions(orders)
    assert redis_contents(redis_client) == first
    assert [t.order_id for t in store.transactions("anna")] == ["o2", "o1"]
    corrected = transaction("o1", amount="10")
    store.add_transactions([corrected])
    assert store.transactions("anna")[1] == corrected
    assert len(store.transactions("anna")) == 2


def test_transactions_are_stored_under_the_recipient_with_a_ttl(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    store.add_transactions([transaction(), transaction(recipient_id="bram")])
    assert set(redis_contents(redis_client)) == {
        keys.transactions("anna"),
        keys.transactions("bram"),
        keys.bought("anna"),  # the order's category, for the newsletter's exclusions
        keys.bought("bram"),
    }
    assert "{r:anna}" in keys.transactions("anna")
    assert 0 < redis_client.ttl(keys.transactions("anna")) <= TTL
    stored = redis_client.hget(keys.transactions("anna"), "o1")
    assert "anna" not in stored
    assert store.transactions("anna") == [transaction()]
    assert store.transactions("nobody") == []


def test_bulk_spans_several_pipelined_chunks(store: CustomerDataStore) -> None:
    orders = (transaction(f"o{n}", recipient_id=f"r{n % 7}") for n in range(2500))
    assert store.add_transactions(orders) == 2500
    assert sum(len(store.transactions(f"r{n}")) for n in range(7)) == 2500


# events


def test_events_are_idempotent_by_natural_key(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    events = [event(10), event(5, "cs_contact", event_id="cs-1"), event(1, "app_login")]
    store.add_events(events)
    first = redis_contents(redis_client)
    assert store.add_events(events) == 3
    assert redis_contents(redis_client) == first
    assert redis_client.zcard(keys.events_by_time("anna")) == 3
    assert [e.type for e in store.recent_events("anna")] == [
        "app_login",
        "cs_contact",
        "site_visit",
    ]


def test_an_event_sent_again_with_another_type_moves_in_the_index(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    store.add_events([event(5, "site_visit", event_id="e1")])
    store.add_events([event(3, "booking", event_id="e1")])
    assert redis_client.zrange(keys.events_by_time("anna"), 0, -1) == ["booking|e1"]
    assert store.recent_events("anna") == [event(3, "booking", event_id="e1")]


def test_only_the_newest_events_are_kept(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    events = [event(minutes, event_id=f"e{minutes}") for minutes in range(8)]
    store.add_events(reversed(events))  # oldest first
    kept = [e.event_id for e in store.recent_events("anna")]
    assert kept == ["e0", "e1", "e2", "e3", "e4"]
    assert set(redis_client.hkeys(keys.events("anna"))) == set(kept)
    state = redis_contents(redis_client)
    store.add_events(events)  # the dropped ones again: still dropped
    assert redis_contents(redis_client) == state


def test_events_have_ttls(store: CustomerDataStore, redis_client: redis.Redis) -> None:
    store.add_events([event()])
    for key in (keys.events("anna"), keys.events_by_time("anna")):
        assert 0 < redis_client.ttl(key) <= TTL


def test_recent_events_since_a_moment(store: CustomerDataStore) -> None:
    store.add_events([event(60 * 24 * 10, "cs_contact"), event(60, "site_visit")])
    week_ago = NOW - dt.timedelta(days=7)
    assert [e.type for e in store.recent_events("anna", week_ago)] == ["site_visit"]
    assert [e.type for e in store.recent_events("anna", limit=1)] == ["site_visit"]
    assert store.recent_events("nobody") == []


def test_the_index_answers_event_conditions_in_one_pipeline(
    store: CustomerDataStore, redis_client: redis.Redis
) -> None:
    store.add_events(
        [
            event(60 * 24 * 3, "cs_contact", event_id="cs-9"),
            event(30, "site_visit"),
            event(90, "site_visit"),
            event(60 * 24 * 20, "booking"),
        ]
    )
    assert recent_event_keys("anna") == [keys.events_by_time("anna")]
    assert store.recent_event_keys("anna") == recent_event_keys("anna")
    batch = Batch(redis_client)
    batch.hgetall(keys.profile("anna"))
    index = queue_recent_event_index(batch, "anna", NOW - dt.timedelta(days=7))
    refs = parse_event_index(batch.execute()[index])
    assert [r.type for r in refs] == ["site_visit", "site_visit", "cs_contact"]
    assert refs[2] == EventRef("cs_contact", "cs-9", NOW - dt.timedelta(days=3))
    latest = last_event_times(refs)
    assert latest == {
        "site_visit": NOW - dt.timedelta(minutes=30),
        "cs_contact": NOW - dt.timedelta(days=3),
    }
    assert "booking" not in latest  # a site visit without a booking this week
    assert store.recent_event_refs("anna", NOW - dt.timedelta(days=7)) == refs


def test_erasure_keys_include_transactions_and_events() -> None:
    assert {keys.transactions("x"), keys.events("x"), keys.events_by_time("x")} <= set(
        keys.recipient_keys("x")
    )
    assert keys.recipient_of(keys.events_by_time("a:b@c.d")) == ("a:b@c.d", "events-by-time")
    assert keys.recipient_of(keys.campaign("daily")) is None
