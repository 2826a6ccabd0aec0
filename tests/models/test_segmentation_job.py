"""The segmentation job on real Redis: the hand-worked customer base gets its known RFM and
lifecycle answers, personas follow the rules, other segments stay, TTLs are never extended."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import redis

from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.customer_data_store import CustomerDataStore
from models.recipients.recipient_store import RecipientStore
from models.recipients.score_freshness import ScoreMaxAges
from models.recipients.segmentation import LifecycleThresholds, PersonaRules
from models.recipients.segmentation_job import PersonaStore, SegmentationJob
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from models.storage import keys
from tests.customer_fixtures import (
    EXPECTED_LIFECYCLE,
    EXPECTED_LIFECYCLE_COUNTS,
    EXPECTED_RFM,
    EXPECTED_RFM_COUNTS,
    NOW,
    PROSPECTS,
    order_rows,
)
from tests.factories import redis_contents

TTL = 30 * 24 * 3600


@pytest.fixture
def recipients(redis_client: redis.Redis) -> RecipientStore:
    """Profiles and scores."""
    return RecipientStore(redis_client, ttl_seconds=TTL)


@pytest.fixture
def personas(redis_client: redis.Redis) -> PersonaStore:
    """The persona rules."""
    return PersonaStore(redis_client)


@pytest.fixture
def job(redis_client: redis.Redis, personas: PersonaStore) -> SegmentationJob:
    """The job with small batches, so the fixture spans several."""
    return SegmentationJob(
        redis_client,
        personas,
        LifecycleThresholds(30, 90, 180),
        rates={"EUR": Decimal(1)},
        ttl_seconds=TTL,
        batch=4,
    )


@pytest.fixture
def customer_base(redis_client: redis.Redis, recipients: RecipientStore) -> None:
    """The fixture's orders; profiles for a few customers and the prospect."""
    CustomerDataStore(redis_client, ttl_seconds=TTL, events_kept=10).add_transactions(
        Transaction.model_validate(row) for row in order_rows()
    )
    recipients.upsert_profiles(
        [
            ProfileUpsert(recipient_id="c01", attributes={"first_name": "Anna"}, segments=["vip"]),
            ProfileUpsert(recipient_id="c09", attributes={"persona": "bargain_hunter"}),
            ProfileUpsert(recipient_id="p01", attributes={"first_name": "Piet"}),
        ]
    )


@pytest.mark.usefixtures("customer_base")
def test_fixture_customers_get_their_known_answers(
    job: SegmentationJob, recipients: RecipientStore
) -> None:
    report = job.run(NOW)
    assert report.recipients == 11
    assert report.customers == 10
    assert report.changed == 11
    assert dict(report.rfm) == EXPECTED_RFM_COUNTS
    assert dict(report.lifecycle) == EXPECTED_LIFECYCLE_COUNTS
    assert dict(report.persona) == {"bargain_hunter": 1}
    for rid, (r, f, m, segment) in EXPECTED_RFM.items():
        profile = recipients.get_profile(rid)
        assert profile is not None, rid
        attributes = profile["attributes"]
        assert (
            attributes["rfm_recency"],
            attributes["rfm_frequency"],
            attributes["rfm_monetary"],
            attributes["rfm_segment"],
        ) == (r, f, m, segment), rid
        assert attributes["lifecycle_stage"] == EXPECTED_LIFECYCLE[rid], rid
        assert f"rfm:{segment}" in profile["segments"], rid
        assert f"lifecycle:{EXPECTED_LIFECYCLE[rid]}" in profile["segments"], rid
    (prospect,) = PROSPECTS
    found = recipients.get_profile(prospect)
    assert found is not None
    assert found["attributes"] == {"first_name": "Piet", "lifecycle_stage": "prospect"}
    assert found["segments"] == ["lifecycle:prospect"]


@pytest.mark.usefixtures("customer_base")
def test_other_segments_and_attributes_stay(
    job: SegmentationJob, recipients: RecipientStore
) -> None:
    job.run(NOW)
    c01 = recipients.get_profile("c01")
    assert c01 is not None
    assert c01["segments"] == ["lifecycle:active", "rfm:champions", "vip"]
    assert c01["attributes"]["first_name"] == "Anna"
    c09 = recipients.get_profile("c09")
    assert c09 is not None
    assert c09["attributes"]["persona"] == "bargain_hunter"
    assert "persona:bargain_hunter" in c09["segments"]


@pytest.mark.usefixtures("customer_base")
def test_a_second_run_changes_nothing(job: SegmentationJob, redis_client: redis.Redis) -> None:
    job.run(NOW)
    state = redis_contents(redis_client)
    again = job.run(NOW)
    assert again.changed == 0
    assert dict(again.rfm) == EXPECTED_RFM_COUNTS
    assert redis_contents(redis_client) == state


@pytest.mark.usefixtures("customer_base")
def test_time_moves_recipients_and_their_old_segments_go(
    job: SegmentationJob, recipients: RecipientStore
) -> None:
    job.run(NOW)
    later = job.run(NOW + dt.timedelta(days=100))
    assert later.lifecycle["new_customer"] == 0
    c03 = recipients.get_profile("c03")
    assert c03 is not None
    assert c03["attributes"]["lifecycle_stage"] == "lapsing"  # one order, 103 days ago
    assert [s for s in c03["segments"] if s.startswith("lifecycle:")] == ["lifecycle:lapsing"]
    assert len([s for s in c03["segments"] if s.startswith("rfm:")]) == 1


@pytest.mark.usefixtures("customer_base")
def test_segmenting_as_of_an_earlier_moment_ignores_later_orders(
    job: SegmentationJob, recipients: RecipientStore
) -> None:
    report = job.run(NOW - dt.timedelta(days=4))  # before c03's only order
    assert report.customers == 9
    c03 = recipients.get_profile("c03")
    assert c03 is not None
    assert c03["attributes"]["lifecycle_stage"] == "prospect"
    assert "rfm_segment" not in c03["attributes"]


@pytest.mark.usefixtures("customer_base")
def test_persona_rules_assign_first_match_and_own_the_attribute(
    job: SegmentationJob, personas: PersonaStore, recipients: RecipientStore
) -> None:
    recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": "c07",
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": {"travel": 0.9},
                }
            )
        ]
    )
    personas.put(
        PersonaRules.model_validate(
            {
                "rules": [
                    {"persona": "vip", "when": {"segment": "rfm:champions"}},
                    {"persona": "traveller", "when": {"score": "travel", "gte": 0.7}},
                    {"persona": "dormant", "when": {"attr": "lifecycle_stage", "eq": "lapsed"}},
                ]
            }
        )
    )
    report = job.run(NOW)
    assert dict(report.persona) == {"vip": 2, "traveller": 1, "dormant": 2}
    personas_found = {
        rid: (recipients.get_profile(rid) or {}).get("attributes", {}).get("persona")
        for rid in ("c01", "c02", "c07", "c08", "c09", "c04", "p01")
    }
    assert personas_found == {
        "c01": "vip",
        "c02": "vip",
        "c07": "traveller",
        "c08": "dormant",
        "c09": "dormant",  # the pushed bargain_hunter gives way to the rules
        "c04": None,
        "p01": None,
    }
    c09 = recipients.get_profile("c09")
    assert c09 is not None
    assert "persona:bargain_hunter" not in c09["segments"]
    assert "persona:dormant" in c09["segments"]


@pytest.mark.usefixtures("customer_base")
def test_the_job_never_extends_a_lifetime(job: SegmentationJob, redis_client: redis.Redis) -> None:
    redis_client.expire(keys.profile("c01"), 100)
    redis_client.expire(keys.segments("c01"), 100)
    redis_client.expire(keys.transactions("c02"), 200)
    job.run(NOW)
    assert 0 < redis_client.ttl(keys.profile("c01")) <= 100
    assert 0 < redis_client.ttl(keys.segments("c01")) <= 100
    # c02 had no profile: the job's new keys live as long as the orders they come from
    for key in (keys.profile("c02"), keys.segments("c02")):
        assert 0 < redis_client.ttl(key) <= 200, key
    for key in redis_client.scan_iter(match=keys.RECIPIENT_KEY_PATTERN):
        assert redis_client.ttl(key) > 0, key


def test_an_empty_database_gives_an_empty_report(job: SegmentationJob) -> None:
    report = job.run(NOW)
    assert report.as_dict() | {"duration_seconds": 0} == {
        "ran_at": NOW.isoformat(),
        "recipients": 0,
        "customers": 0,
        "changed": 0,
        "rfm": {},
        "lifecycle": {},
        "persona": {},
        "duration_seconds": 0,
    }


def test_persona_store_round_trip(personas: PersonaStore) -> None:
    assert personas.get() == PersonaRules(rules=[])
    rules = PersonaRules.model_validate({"rules": [{"persona": "all"}]})
    assert personas.put(rules) == rules
    assert personas.get() == rules


def test_persona_rules_see_what_open_time_conditions_see(
    redis_client: redis.Redis, personas: PersonaStore, recipients: RecipientStore
) -> None:
    """Fresh scores only, events, and ``seen_within_days`` counting orders stored before the
    recipient's profile existed (a guest buyer)."""
    week = dt.timedelta(days=7)
    customer_data = CustomerDataStore(redis_client, ttl_seconds=TTL, events_kept=10)
    customer_data.add_transactions(  # before any profile: no last-order mark on a profile
        [
            Transaction.model_validate(
                {
                    "recipient_id": "guest",
                    "order_id": "g1",
                    "at": NOW - dt.timedelta(days=3),
                    "amount": "10",
                    "currency": "EUR",
                }
            )
        ]
    )
    recipients.upsert_profiles(
        [
            ProfileUpsert(recipient_id=rid, attributes={"x": 1})
            for rid in ("guest", "stale", "caller")
        ]
    )
    recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": "stale",
                    "scores": {"travel": {"value": 0.9, "computed_at": NOW - 2 * week}},
                }
            )
        ]
    )
    customer_data.add_events(
        [
            CustomerEvent.model_validate(
                {"recipient_id": "caller", "type": "cs_contact", "at": NOW - dt.timedelta(days=1)}
            )
        ]
    )
    personas.put(
        PersonaRules.model_validate(
            {
                "rules": [
                    {"persona": "traveller", "when": {"score": "travel", "gte": 0.7}},
                    {"persona": "complainer", "when": {"event": "cs_contact", "within_days": 7}},
                    {"persona": "recent", "when": {"seen_within_days": 30}},
                ]
            }
        )
    )
    job = SegmentationJob(
        redis_client,
        personas,
        LifecycleThresholds(30, 90, 180),
        rates={"EUR": Decimal(1)},
        ttl_seconds=TTL,
        max_ages=ScoreMaxAges.parse(7 * 24, ""),
    )
    job.run(NOW)
    found = {
        rid: (recipients.get_profile(rid) or {}).get("attributes", {}).get("persona")
        for rid in ("guest", "stale", "caller")
    }
    assert found == {"guest": "recent", "stale": None, "caller": "complainer"}
