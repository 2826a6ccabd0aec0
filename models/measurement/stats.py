"""Real-time counters of opens and clicks, written in the same batch as the event.

Per campaign and bucket (a UTC day, or a newsletter send), one hash counts events by
``event|block|variant|client|kind``. Per UTC day, one HyperLogLog per ``event|block|variant``
estimates unique recipients for trend figures, which reports label approximate
(``APPROX_RELATIVE_ERROR``). The exact figures an experiment is decided on (distinct recipients
per arm, per experiment and per send) are ``models.measurement.arm_counts``, marked in the same
batch. Every key expires after the retention period.

Each of these keys is split over ``keys.MEASUREMENT_SHARDS`` shards by recipient (``shard_of``),
so that one campaign's counting spreads over a cluster's nodes; reading sums the shards (a
recipient is in one shard only, so unique counts add up too).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from models.campaigns.experiments import HOLDOUT_ARM, ArmOutcome, Totals
from models.conversions.money_counts import MINOR_UNITS, Money, read_money
from models.held_values import HeldValues
from models.measurement.arm_counts import (
    EXPERIMENT_SCOPE,
    ArmCounts,
    Scope,
    flags_of,
    mark_commands,
    persona_scope,
    read_arm_counts,
    send_scope,
)
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX
from models.storage import keys
from models.storage.batch import Batch, NodeGuard

log = logging.getLogger(__name__)
FALLBACK_VARIANT = "_fallback"
HOLDOUT_KIND = HOLDOUT_ARM
EXPIRY_REFRESH_SECONDS = 3600.0
OPEN_KINDS = ("human", "proxied_human", "machine", "unknown")
APPROX_RELATIVE_ERROR = 0.0081
"""The standard error of Redis's HyperLogLog estimates (0.81%), which reports state beside every
approximate figure."""


def variant_label(variant_id: str | None) -> str:
    """The counter label of a variant (the fallback has its own)."""
    return variant_id or FALLBACK_VARIANT


@dataclass(frozen=True)
class CountedEvent:
    """One open or click as the counters see it."""

    campaign_id: str
    block_id: str
    variant: str
    recipient_id: str
    event: str  # "open" or "click"
    client: str
    kind: str  # open kinds, or "human"/"bot" for clicks
    at: dt.datetime
    holdout: bool = False
    send: str | None = None
    """The newsletter send the event belongs to; its counters are also kept per send."""
    persona: str | None = None
    """The recipient's persona, for a newsletter slot's event: its item's figures are also kept
    per persona (what the ranking learns popularity from)."""

    @property
    def unique_countable(self) -> bool:
        """Opens by people or proxies and clicks by people count towards unique figures."""
        if self.event == "open":
            return self.kind in ("human", "proxied_human", "unknown")
        return self.kind == "human"


COUNTED_EVENTS = ("open", "click")
"""The events the counters count; others (e.g. a website ``view``) are only in the stream."""


def send_bucket(send_id: str) -> str:
    """The counter bucket of a newsletter send (next to the UTC days)."""
    return f"send:{send_id}"


def shard_of(pseudonym: str) -> int:
    """The measurement shard of a recipient, by the pseudonym events carry."""
    return zlib.crc32(pseudonym.encode()) % keys.MEASUREMENT_SHARDS


def _day(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).date().isoformat()


class StatsStore:
    """Queues counter updates on a pipeline and reads them back as report rows."""

    def __init__(self, client: redis.Redis, retention_days: int, send_marks_days: int = 7) -> None:
        self.redis = client
        self.ttl = retention_days * 86400
        self.send_marks_ttl = min(send_marks_days, retention_days) * 86400
        self._expiry_set: dict[str, float] = {}
        self._lock = threading.Lock()

    def _expire(self, pipe: Batch, key: str) -> None:
        """Queue EXPIRE for ``key`` at most once an hour per process (saves a command per
        counter on the open-time path; the retention is days, so an hour is no drift)."""
        now = time.monotonic()
        with self._lock:
            if now - self._expiry_set.get(key, -EXPIRY_REFRESH_SECONDS) < EXPIRY_REFRESH_SECONDS:
                return
            if len(self._expiry_set) > 10_000:
                self._expiry_set.clear()
            self._expiry_set[key] = now
        pipe.expire(key, self.ttl)

    def queue(self, pipe: Batch, event: CountedEvent) -> None:
        """Add the counter updates for ``event`` to ``pipe`` (only opens and clicks count)."""
        if event.event not in COUNTED_EVENTS:
            return
        variant = HOLDOUT_KIND if event.holdout else event.variant
        field = f"{event.event}|{event.block_id}|{variant}|{event.client}|{event.kind}"
        day = _day(event.at)
        buckets = [day] + ([send_bucket(event.send)] if event.send else [])
        shard = shard_of(event.recipient_id)
        for bucket in buckets:
            counts = keys.stats_counts(event.campaign_id, bucket, shard)
            pipe.hincrby(counts, field, 1)
            self._expire(pipe, counts)
        if event.unique_countable:
            unique = keys.stats_unique(
                event.campaign_id, day, event.event, event.block_id, variant, shard
            )
            pipe.pfadd(unique, event.recipient_id)
            self._expire(pipe, unique)
        self._queue_marks(pipe, event, variant, shard)

    def queue_marks(self, pipe: Batch, event: CountedEvent) -> None:
        """Add only the exact per-arm marks of ``event`` to ``pipe`` (``queue`` adds them with
        the counters; alone, they can be written again without counting the event twice)."""
        if event.event in COUNTED_EVENTS:
            variant = HOLDOUT_KIND if event.holdout else event.variant
            self._queue_marks(pipe, event, variant, shard_of(event.recipient_id))

    def _queue_marks(self, pipe: Batch, event: CountedEvent, variant: str, shard: int) -> None:
        scopes = [Scope(EXPERIMENT_SCOPE, self.ttl, self.ttl)]
        if event.send:
            scopes.append(Scope(send_scope(event.send), self.send_marks_ttl, self.ttl))
        if event.persona and event.block_id.startswith(SLOT_BLOCK_PREFIX):
            scopes.append(Scope(persona_scope(event.persona), self.ttl, self.ttl))
        for command in mark_commands(
            event.campaign_id,
            scopes,
            event.block_id,
            variant,
            event.recipient_id,
            shard,
            flags_of(event.event, event.kind),
        ):
            pipe.add(*command)

    def arms(
        self,
        campaign_id: str,
        scope: str = EXPERIMENT_SCOPE,
        *,
        client: Any = None,
        guard: NodeGuard | None = None,
    ) -> dict[str, dict[str, ArmCounts]]:
        """Exact distinct recipients per block and arm in ``scope`` (``arm_counts``)."""
        return read_arm_counts(
            client if client is not None else self.redis, campaign_id, scope, guard=guard
        )

    def totals(
        self,
        campaign_id: str,
        block_id: str,
        *,
        client: Any = None,
        guard: NodeGuard | None = None,
    ) -> Totals:
        """Each arm's outcome to date (recipients, clickers, and the converters and revenue
        credited by a click): what the bandit learns from. With a ``guard`` (the open path), a
        shard whose node fails or is skipped is left out: the bandit decides on what answered
        rather than wait for every node."""
        source = client if client is not None else self.redis
        arms = self.arms(campaign_id, client=client, guard=guard).get(block_id, {})
        money = read_money(source, campaign_id, EXPERIMENT_SCOPE, guard=guard).get(block_id, {})
        outcomes = {}
        for arm, counts in arms.items():
            credited = money.get(("click", arm), Money())
            outcomes[arm] = ArmOutcome(
                recipients=counts.recipients,
                clickers=counts.clickers,
                converters=credited.converters,
                revenue=float(credited.revenue),
                revenue_sq=credited.revenue_sq_minor / MINOR_UNITS**2,
            )
        return outcomes

    def report(
        self, campaign_id: str, buckets: Iterable[str], block_id: str | None = None
    ) -> list[ReportRow]:
        """One row per bucket (a UTC day, or a send's ``send_bucket``), block and variant that
        had events: the counts, and the approximate unique figures of a day."""
        bucket_list = list(buckets)
        batch = Batch(self.redis)
        for bucket in bucket_list:
            for shard in keys.SHARDS_READ:
                batch.hgetall(keys.stats_counts(campaign_id, bucket, shard))
        bucket_counts = iter(batch.execute())
        rows: dict[tuple[str, str, str], ReportRow] = {}
        for bucket in bucket_list:
            for _ in keys.SHARDS_READ:
                for name, count in next(bucket_counts).items():
                    event, block, variant, client, kind = name.split("|")
                    if block_id is not None and block != block_id:
                        continue
                    key = (bucket, block, variant)
                    row = rows.setdefault(key, ReportRow(bucket, block, variant))
                    row.add(event, client, kind, int(count))
        ordered = sorted(rows.values(), key=lambda r: (r.day, r.block_id, r.variant))
        days = [row for row in ordered if not row.day.startswith(SEND_BUCKET_PREFIX)]
        self.fill_approx_uniques(campaign_id, [([row.day], row) for row in days])
        return ordered

    def fill_approx_uniques(
        self, campaign_id: str, wanted: list[tuple[list[str], ReportRow]]
    ) -> None:
        """Set each row's approximate unique opens and clicks over its UTC days (a recipient
        on several days counts once): per shard one PFCOUNT over the days (a shard's keys share
        a hash slot), summed over the shards; all in one batch."""
        batch = Batch(self.redis)
        for days, row in wanted:
            for event in COUNTED_EVENTS:
                for shard in keys.SHARDS_READ:
                    batch.add(
                        "PFCOUNT",
                        *[
                            keys.stats_unique(
                                campaign_id, day, event, row.block_id, row.variant, shard
                            )
                            for day in days
                        ],
                    )
        counts = iter(batch.execute())
        for _, row in wanted:
            row.approx_unique_opens = sum(int(next(counts)) for _ in keys.SHARDS_READ)
            row.approx_unique_clicks = sum(int(next(counts)) for _ in keys.SHARDS_READ)


@dataclass
class ReportRow:
    """Counts for one day (or send), block and variant. A day has approximate unique figures;
    a send, and the experiment's arms, have exact ones (``exact``)."""

    day: str
    block_id: str
    variant: str
    opens: int = 0
    machine_opens: int = 0
    unknown_opens: int = 0
    human_opens: int = 0
    clicks: int = 0
    bot_clicks: int = 0
    by_client: dict[str, dict[str, int]] = field(default_factory=dict)
    approx_unique_opens: int | None = None
    approx_unique_clicks: int | None = None
    exact: ArmCounts | None = None

    def add(self, event: str, client: str, kind: str, count: int) -> None:
        """Fold one counter into the row (events other than opens and clicks are ignored)."""
        if event not in COUNTED_EVENTS:
            return
        per_client = self.by_client.setdefault(client, {"opens": 0, "clicks": 0})
        if event == "open":
            self.opens += count
            per_client["opens"] += count
            if kind == "machine":
                self.machine_opens += count
            elif kind == "unknown":
                self.unknown_opens += count
            else:
                self.human_opens += count
        elif kind == "bot":
            self.bot_clicks += count
        else:
            self.clicks += count
            per_client["clicks"] += count

    def fold(self, other: ReportRow) -> None:
        """Add ``other``'s counts (not its unique figures, which do not add up)."""
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for client, counts in other.by_client.items():
            into = self.by_client.setdefault(client, {"opens": 0, "clicks": 0})
            into["opens"] += counts["opens"]
            into["clicks"] += counts["clicks"]

    def as_dict(self) -> dict[str, Any]:
        """The row as the reports API shows it: counts, then the unique figures it has (the
        others None)."""
        exact = self.exact.as_dict() if self.exact is not None else dict.fromkeys(EXACT_FIELDS)
        return {
            "day": self.day,
            "block": self.block_id,
            "variant": self.variant,
            **{name: getattr(self, name) for name in SUMMED},
            "approx_unique_opens": self.approx_unique_opens,
            "approx_unique_clicks": self.approx_unique_clicks,
            **exact,
            "by_client": self.by_client,
        }


SUMMED = ("opens", "human_opens", "machine_opens", "unknown_opens", "clicks", "bot_clicks")
"""A row's plain counts (they add up over days)."""
EXACT_FIELDS = tuple(ArmCounts().as_dict())
"""The exact figures of a row, in order."""
SEND_BUCKET_PREFIX = send_bucket("")


class CachedTotals:
    """``StatsStore.totals`` held per block for a few seconds, for the bandit's hot path
    (``models.held_values``): an open never waits for the counters of every shard (which live on
    every node of a cluster) but once. Reads go through the open path's client and breakers."""

    def __init__(
        self,
        stats: StatsStore,
        seconds: float,
        client: Any = None,
        guard: NodeGuard | None = None,
    ) -> None:
        self.seconds = seconds
        self._held: HeldValues[tuple[str, str], Totals] = HeldValues(
            lambda key: stats.totals(*key, client=client, guard=guard), seconds
        )

    def __call__(self, campaign_id: str, block_id: str) -> Totals:
        return self._held((campaign_id, block_id))
