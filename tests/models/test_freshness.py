"""Freshness of recipient data: which source wrote each attribute and when, when the recipient
was last seen, and how the open's pipelined read hands both to the conditions. Real Redis."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import redis

from models.campaigns.conditions import AttributeCondition, SeenCondition
from models.ingest.bulk_ingest import ingest_csv, ingest_jsonl
from models.ingest.csv_rows import PROFILES
from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.customer_data_store import CustomerDataStore
from models.recipients.recipient_reads import RecipientData, queue_recipient_reads
from models.recipients.recipient_store import (
    LAST_ORDER_FIELD,
    AttributeTimes,
    RecipientStore,
    decode_profile,
    encode_value,
    read_profile,
    source_times,
)
from models.recipients.score_freshness import NO_LIMIT
from models.recipients.upserts import ProfileUpsert
from models.storage import keys
from models.storage.batch import Batch

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
TTL = 3600


def days_ago(days: float) -> dt.datetime:
    """A moment ``days`` before NOW."""
    return NOW - dt.timedelta(days=days)


@pytest.fixture
def recipients(redis_client: redis.Redis) -> RecipientStore:
    """A recipient store without tombstones."""
    return RecipientStore(redis_client, ttl_seconds=TTL)


@pytest.fixture
def customer_data(redis_client: redis.Redis) -> CustomerDataStore:
    """A transactions and events store."""
    return CustomerDataStore(redis_client, ttl_seconds=TTL, events_kept=10)


def upsert(
    attributes: dict[str, Any], source: str | None = None, written: dt.datetime | None = None
) -> ProfileUpsert:
    """Anna's profile upsert from ``source`` as of ``written``."""
    document: dict[str, Any] = {"recipient_id": "anna", "attributes": attributes}
    if source is not None:
        document["source"] = source
    if written is not None:
        document["updated_at"] = written.isoformat()
    return ProfileUpsert.model_validate(document)


def order(at: dt.datetime, order_id: str = "o1") -> Transaction:
    """One of Anna's orders, placed at ``at``."""
    return Transaction.model_validate(
        {
            "recipient_id": "anna",
            "order_id": order_id,
            "at": at.isoformat(),
            "amount": "10",
            "currency": "EUR",
        }
    )


def visit(at: dt.datetime, kind: str = "site_visit") -> CustomerEvent:
    """One of Anna's events at ``at``."""
    return CustomerEvent.model_validate(
        {"recipient_id": "anna", "type": kind, "at": at.isoformat(), "channel": "web"}
    )


def read(client: redis.Redis, recipient_id: str = "anna") -> RecipientData:
    """The recipient's data as the open's pipelined read gives it."""
    batch = Batch(client)
    batch.get("unrelated")  # the open queues its own reads too
    queued = queue_recipient_reads(batch, recipient_id, NOW)
    return queued.parse(batch.execute(), NOW, NO_LIMIT)


# per-attribute sources


def test_each_attribute_remembers_its_source(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    crm = upsert({"first_name": "Anna", "city": "Utrecht"}, "crm", days_ago(400))
    web = upsert({"city": "Gouda", "last_name": "Jansen"}, "web", days_ago(3))
    recipients.upsert_profiles([crm, web])
    raw = redis_client.hgetall(keys.profile("anna"))
    assert decode_profile(raw) == {"first_name": "Anna", "city": "Gouda", "last_name": "Jansen"}
    assert read_profile(raw).sources == {"first_name": "crm", "city": "web", "last_name": "web"}
    assert source_times(raw) == {"crm": days_ago(400), "web": days_ago(3)}
    data = read(redis_client)
    assert data.profile == {"first_name": "Anna", "city": "Gouda", "last_name": "Jansen"}
    assert data.attributes_updated == {
        "first_name": days_ago(400),
        "city": days_ago(3),
        "last_name": days_ago(3),
    }


def test_a_source_vouches_for_what_it_wrote_before(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna"}, "crm", days_ago(400))])
    recipients.upsert_profiles([upsert({"city": "Gouda"}, "crm", days_ago(2))])  # a delta sync
    assert read(redis_client).attributes_updated == {
        "first_name": days_ago(2),
        "city": days_ago(2),
    }


def test_the_source_defaults_to_api_and_the_time_to_now(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    recipients.upsert_profiles([upsert({"first_name": "Anna"})])
    raw = redis_client.hgetall(keys.profile("anna"))
    assert read_profile(raw).sources == {"first_name": "api"}
    assert before <= AttributeTimes(read_profile(raw))["first_name"] <= dt.datetime.now(dt.UTC)


def test_removing_an_attribute_removes_its_source(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna", "city": "Utrecht"}, "crm")])
    recipients.upsert_profiles([upsert({"city": None}, "crm")])
    raw = redis_client.hgetall(keys.profile("anna"))
    assert read_profile(raw).sources == {"first_name": "crm"}
    assert set(decode_profile(raw)) == {"first_name"}


def test_an_attribute_without_a_recorded_source_has_no_known_freshness(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna"}, "crm", days_ago(1))])
    redis_client.hset(keys.profile("anna"), "lifecycle_stage", json.dumps("active"))  # computed
    data = read(redis_client)
    assert data.profile == {"first_name": "Anna", "lifecycle_stage": "active"}
    assert data.attributes_updated == {"first_name": days_ago(1)}


def test_sources_cost_a_tag_and_one_field_per_source(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    attributes = {"first_name": "Anna", "age": 34, "vip": True, "tags": ["a", "b"]}
    recipients.upsert_profiles([upsert(attributes, "crm", days_ago(1))])
    raw = redis_client.hgetall(keys.profile("anna"))
    assert raw == {
        "_updated_at": json.dumps(days_ago(1).isoformat()),
        "_src:crm": str(int(days_ago(1).timestamp())),
        "first_name": 'crm:"Anna"',
        "age": "crm:34",
        "vip": "crm:true",
        "tags": 'crm:["a", "b"]',
    }
    assert redis_client.object("encoding", keys.profile("anna")) in ("listpack", "ziplist")
    assert decode_profile(raw) == attributes


def test_untagged_values_still_read() -> None:
    plain = {"flag": "true", "n": "-2.5", "text": '"a:b"', "list": '["x:y"]', "off": "false"}
    stored = read_profile(plain)
    assert stored.attributes == {
        "flag": True,
        "n": -2.5,
        "text": "a:b",
        "list": ["x:y"],
        "off": False,
    }
    assert stored.sources == {}
    assert AttributeTimes(stored) == {}


@pytest.mark.parametrize(
    "value", ["Anna", 'é"\\x\n', 34, -2, 0, True, False, 2.5, 1e300, ["a", "b"], 10**20]
)
def test_values_are_encoded_as_json_dumps_would(value: Any) -> None:
    assert encode_value(value) == json.dumps(value)


def test_an_upsert_is_still_idempotent(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    change = upsert({"first_name": "Anna"}, "crm", days_ago(2))
    recipients.upsert_profiles([change])
    once = redis_client.hgetall(keys.profile("anna"))
    recipients.upsert_profiles([change])
    assert redis_client.hgetall(keys.profile("anna")) == once


@pytest.mark.parametrize("source", ["CRM", "", "crm system", "9crm", "x" * 33])
def test_invalid_sources_are_refused_per_line(recipients: RecipientStore, source: str) -> None:
    line = json.dumps({"recipient_id": "anna", "attributes": {"a": 1}, "source": source})
    report = ingest_jsonl([line], ProfileUpsert, recipients.upsert_profiles)
    assert (report.stored, report.rejected) == (0, 1)
    assert report.errors[0].pointer == "/source"


def test_csv_profiles_take_a_source_column(
    recipients: RecipientStore, redis_client: redis.Redis
) -> None:
    rows = [
        "recipient_id,source,updated_at,first_name\n",
        f"anna,crm,{days_ago(5).isoformat()},Anna\n",
        "bram,Not A Slug,,Bram\n",
        "chloe,,,Chloé\n",
    ]
    report = ingest_csv([r.encode() for r in rows], PROFILES, recipients.upsert_profiles)
    assert (report.stored, report.rejected) == (2, 1)
    assert (report.errors[0].line, report.errors[0].pointer) == (3, "/source")
    anna = redis_client.hgetall(keys.profile("anna"))
    assert read_profile(anna).sources == {"first_name": "crm"}
    assert AttributeTimes(read_profile(anna)) == {"first_name": days_ago(5)}
    chloe = redis_client.hgetall(keys.profile("chloe"))
    assert read_profile(chloe).sources == {"first_name": "api"}


# last seen


def test_last_seen_is_the_latest_event_or_order(
    recipients: RecipientStore, customer_data: CustomerDataStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna"})])
    assert read(redis_client).last_seen is None
    customer_data.add_events([visit(days_ago(120)), visit(days_ago(200), "cs_contact")])
    assert read(redis_client).last_seen == days_ago(120)
    customer_data.add_transactions([order(days_ago(30))])
    assert read(redis_client).last_seen == days_ago(30)
    customer_data.add_events([visit(days_ago(2), "app_login")])
    data = read(redis_client)
    assert data.last_seen == days_ago(2)
    assert data.audience(NOW).last_seen == days_ago(2)


def test_latest_order_time_only_moves_forward(
    recipients: RecipientStore, customer_data: CustomerDataStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna"})])
    customer_data.add_transactions([order(days_ago(10), "o2"), order(days_ago(50), "o1")])
    assert read(redis_client).last_seen == days_ago(10)
    customer_data.add_transactions([order(days_ago(300), "o0")])  # a late backfill
    assert read(redis_client).last_seen == days_ago(10)
    assert [t.order_id for t in customer_data.transactions("anna")] == ["o0", "o1", "o2"]


def test_orders_mark_a_profile_without_creating_or_extending_one(
    recipients: RecipientStore, customer_data: CustomerDataStore, redis_client: redis.Redis
) -> None:
    customer_data.add_transactions([order(days_ago(10))])
    assert not redis_client.exists(keys.profile("anna"))
    recipients.upsert_profiles([upsert({"first_name": "Anna"})])
    redis_client.expire(keys.profile("anna"), 60)
    customer_data.add_transactions([order(days_ago(1), "o2")])
    assert redis_client.ttl(keys.profile("anna")) <= 60
    raw = redis_client.hgetall(keys.profile("anna"))
    assert raw[LAST_ORDER_FIELD] == str(int(days_ago(1).timestamp()))
    assert decode_profile(raw) == {"first_name": "Anna"}
    assert redis_client.hlen(keys.transactions("anna")) == 2  # orders only


# the conditions on what the open reads


def test_conditions_see_the_freshness_the_open_reads(
    recipients: RecipientStore, customer_data: CustomerDataStore, redis_client: redis.Redis
) -> None:
    recipients.upsert_profiles([upsert({"first_name": "Anna"}, "crm", days_ago(400))])
    recipients.upsert_profiles([upsert({"salutation": "Ms"}, "web", days_ago(10))])
    customer_data.add_events([visit(days_ago(120))])
    audience = read(redis_client).audience(NOW)
    seen_90 = SeenCondition(seen_within_days=90)
    assert not seen_90.matches(audience)
    fresh_name = AttributeCondition(attr="first_name", updated_within_days=365)
    fresh_salutation = AttributeCondition(attr="salutation", updated_within_days=365)
    assert not fresh_name.matches(audience)
    assert fresh_salutation.matches(audience)
    customer_data.add_events([visit(days_ago(1))])
    assert seen_90.matches(read(redis_client).audience(NOW))
