"""The segmentation job: reads every recipient's transactions, writes RFM, lifecycle and persona.

It finds recipients by SCAN over the recipient keys (those with a profile or transactions),
then makes two passes in pipelined batches: the first sums up each customer's orders (kept in
memory, one small record per customer, to rank the population), the second reads profiles,
scores and segments, and writes only what changed. Profile attributes ``rfm_recency``,
``rfm_frequency``, ``rfm_monetary``, ``rfm_segment``, ``lifecycle_stage`` and ``persona`` (with
persona rules) are set or removed, and the segments ``rfm:<segment>``, ``lifecycle:<stage>`` and
``persona:<name>`` replace earlier ones of those prefixes; other segments stay. The job never
extends a key's lifetime: a profile or segment set it creates gets the remaining TTL of the
recipient's transactions (else of the profile, else the profile TTL).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis

from models.campaigns.conditions import MAX_EVENT_LOOKBACK_DAYS
from models.recipients.customer_data import last_event_times, parse_event_index
from models.recipients.customer_data_store import queue_recent_event_index
from models.recipients.recipient_store import UPDATED_AT_FIELD, decode_profile, decode_scores
from models.recipients.score_freshness import NO_LIMIT, ScoreMaxAges
from models.recipients.segmentation import (
    LIFECYCLE_ATTRIBUTE,
    PERSONA_PREFIX,
    CustomerStats,
    LifecycleThresholds,
    Outcome,
    PersonaRules,
    Population,
    customer_stats,
    orders_from_stored,
    segment_changes,
    segment_recipient,
)
from models.storage import keys
from models.storage.batch import Batch
from models.storage.scan import scan_every_primary

BATCH = 1000
_SOURCES = ("profile", "transactions")


class PersonaStore:
    """The persona rule set, one JSON document in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self) -> PersonaRules:
        """The stored rules (none when never set)."""
        document = self.redis.get(keys.PERSONA_RULES)
        return PersonaRules.model_validate_json(document) if document else PersonaRules(rules=[])

    def put(self, rules: PersonaRules) -> PersonaRules:
        """Replace the rules."""
        self.redis.set(keys.PERSONA_RULES, rules.model_dump_json(by_alias=True, exclude_none=True))
        return rules


@dataclass
class SegmentationReport:
    """What a run did: recipients seen, customers among them, members per segment, time."""

    ran_at: dt.datetime
    recipients: int = 0
    customers: int = 0
    rfm: Counter[str] = field(default_factory=Counter)
    lifecycle: Counter[str] = field(default_factory=Counter)
    persona: Counter[str] = field(default_factory=Counter)
    changed: int = 0
    duration_seconds: float = 0.0

    def count(self, outcome: Outcome) -> None:
        """Count one recipient's outcome."""
        self.recipients += 1
        if outcome.rfm_segment is not None:
            self.customers += 1
            self.rfm[outcome.rfm_segment] += 1
        self.lifecycle[str(outcome.attributes[LIFECYCLE_ATTRIBUTE])] += 1
        persona = next((s for s in outcome.segments if s.startswith(PERSONA_PREFIX)), None)
        if persona is not None:
            self.persona[persona.removeprefix(PERSONA_PREFIX)] += 1

    def as_dict(self) -> dict[str, Any]:
        """The report as the API and CLI print it."""
        return {
            "ran_at": self.ran_at.isoformat(),
            "recipients": self.recipients,
            "customers": self.customers,
            "changed": self.changed,
            "rfm": dict(sorted(self.rfm.items())),
            "lifecycle": dict(sorted(self.lifecycle.items())),
            "persona": dict(sorted(self.persona.items())),
            "duration_seconds": round(self.duration_seconds, 3),
        }


class SegmentationJob:
    """Recomputes every recipient's segments. Expects a ``decode_responses=True`` client."""

    def __init__(
        self,
        client: redis.Redis,
        personas: PersonaStore,
        thresholds: LifecycleThresholds,
        rates: Mapping[str, Decimal],
        ttl_seconds: int,
        batch: int = BATCH,
        max_ages: ScoreMaxAges = NO_LIMIT,
    ) -> None:
        self.redis = client
        self.max_ages = max_ages
        """Which scores persona rules may use (the open path's freshness rule)."""
        self.personas = personas
        self.thresholds = thresholds
        self.rates = dict(rates)
        self.ttl_ms = ttl_seconds * 1000
        self.batch = batch

    def run(self, now: dt.datetime) -> SegmentationReport:
        """Segment every recipient as of ``now``."""
        started = time.perf_counter()
        report = SegmentationReport(ran_at=now)
        rules = self.personas.get()
        recipients = self.recipient_ids()
        stats = self._customer_stats(recipients, now)
        population = Population(stats.values(), now)
        for batch in _batches(recipients, self.batch):
            self._segment_batch(batch, stats, population, rules, report, now)
        report.duration_seconds = time.perf_counter() - started
        return report

    def recipient_ids(self) -> list[str]:
        """Every recipient with a profile or transactions, sorted (from every primary of a
        cluster; TopologyChanged if its slots move meanwhile)."""
        found: set[str] = set()
        for key in scan_every_primary(self.redis, keys.RECIPIENT_KEY_PATTERN, BATCH):
            parsed = keys.recipient_of(key)
            if parsed is not None and parsed[1] in _SOURCES:
                found.add(parsed[0])
        return sorted(found)

    def _customer_stats(self, recipients: list[str], now: dt.datetime) -> dict[str, CustomerStats]:
        stats: dict[str, CustomerStats] = {}
        for batch in _batches(recipients, self.batch):
            reads = Batch(self.redis)
            for rid in batch:
                reads.hgetall(keys.transactions(rid))
            for rid, raw in zip(batch, reads.execute(), strict=True):
                found = customer_stats(orders_from_stored(raw), now, self.rates)
                if found is not None:
                    stats[rid] = found
        return stats

    def _segment_batch(
        self,
        batch: list[str],
        stats: dict[str, CustomerStats],
        population: Population,
        rules: PersonaRules,
        report: SegmentationReport,
        now: dt.datetime,
    ) -> None:
        reads = Batch(self.redis)
        since = now - dt.timedelta(days=MAX_EVENT_LOOKBACK_DAYS)
        queued = [_StoredRecipient.queue(reads, rid, since) for rid in batch]
        replies = reads.execute()
        writes = self.redis.pipeline(transaction=False)
        for rid, stored in zip(batch, queued, strict=True):
            raw_profile = replies[stored.profile]
            raw_scores = replies[stored.scores]
            segments = replies[stored.segments]
            transactions_ttl = replies[stored.transactions_ttl]
            profile_ttl = replies[stored.profile_ttl]
            profile = decode_profile(raw_profile)
            profile.pop(UPDATED_AT_FIELD, None)
            scores = self.max_ages.fresh_values(decode_scores(raw_scores), now)
            events = last_event_times(parse_event_index(replies[stored.events]))
            customer = stats.get(rid)
            seen = [
                *events.values(),
                *([customer.last_order_at] if customer else []),  # stored before the profile too
            ]
            outcome = segment_recipient(
                customer,
                population,
                self.thresholds,
                rules,
                profile,
                scores,
                frozenset(segments),
                events,
                max(seen, default=None),
            )
            report.count(outcome)
            ttl_ms = next((t for t in (transactions_ttl, profile_ttl) if t > 0), self.ttl_ms)
            if self._queue_writes(writes, rid, outcome, raw_profile, profile, segments, ttl_ms):
                report.changed += 1
        writes.execute()

    @staticmethod
    def _queue_writes(
        pipe: Any,
        rid: str,
        outcome: Outcome,
        raw_profile: dict[str, str],
        profile: dict[str, Any],
        segments: set[str],
        ttl_ms: int,
    ) -> bool:
        """Queue what differs from what is stored; return whether anything did."""
        profile_key, segments_key = keys.profile(rid), keys.segments(rid)
        attributes = outcome.attributes
        changed_values = {
            name: json.dumps(value)
            for name, value in attributes.items()
            if value is not None and profile.get(name) != value
        }
        removed = [n for n, v in attributes.items() if v is None and n in profile]
        stale, added = segment_changes(segments, outcome.segments)
        if changed_values:
            pipe.hset(profile_key, mapping=changed_values)
            if not raw_profile:
                pipe.pexpire(profile_key, ttl_ms)
        if removed:
            pipe.hdel(profile_key, *removed)
        if stale:
            pipe.srem(segments_key, *stale)
        if added:
            pipe.sadd(segments_key, *added)
            if not segments:
                pipe.pexpire(segments_key, ttl_ms)
        return bool(changed_values or removed or stale or added)


@dataclass(frozen=True)
class _StoredRecipient:
    """Where one recipient's reads are in a segmentation batch."""

    profile: int
    scores: int
    segments: int
    transactions_ttl: int
    profile_ttl: int
    events: int

    @classmethod
    def queue(cls, batch: Batch, recipient_id: str, since: dt.datetime) -> _StoredRecipient:
        return cls(
            profile=batch.hgetall(keys.profile(recipient_id)),
            scores=batch.hgetall(keys.scores(recipient_id)),
            segments=batch.smembers(keys.segments(recipient_id)),
            transactions_ttl=batch.add("PTTL", keys.transactions(recipient_id)),
            profile_ttl=batch.add("PTTL", keys.profile(recipient_id)),
            events=queue_recent_event_index(batch, recipient_id, since),
        )


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
