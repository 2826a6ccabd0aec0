"""Real-time counters of opens and clicks, written in the same batch as the event.

Per campaign and UTC day, one hash counts events by ``event|block|variant|client|kind`` and one
HyperLogLog per ``event|block|variant`` counts unique recipients (opens by people or proxies,
clicks by people). A totals hash per campaign keeps human opens and clicks per block and variant
for the bandit. Every key expires after the retention period.

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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from models.campaigns.experiments import HOLDOUT_ARM
from models.storage import keys
from models.storage.batch import Batch, NodeGuard

log = logging.getLogger(__name__)
FALLBACK_VARIANT = "_fallback"
HOLDOUT_KIND = HOLDOUT_ARM
EXPIRY_REFRESH_SECONDS = 3600.0
OPEN_KINDS = ("human", "proxied_human", "machine", "unknown")


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

    def __init__(self, client: redis.Redis, retention_days: int) -> None:
        self.redis = client
        self.ttl = retention_days * 86400
        self._expiry_set: dict[str, float] = {}
        self._lock = threading.Lock()

    def _expire(self, pipe: Any, key: str) -> None:
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

    def queue(self, pipe: Any, event: CountedEvent) -> None:
        """Add the counter updates for ``event`` to ``pipe`` (only opens and clicks count)."""
        if event.event not in COUNTED_EVENTS:
            return
        variant = HOLDOUT_KIND if event.holdout else event.variant
        field = f"{event.event}|{event.block_id}|{variant}|{event.client}|{event.kind}"
        buckets = [_day(event.at)] + ([send_bucket(event.send)] if event.send else [])
        shard = shard_of(event.recipient_id)
        for bucket in buckets:
            counts = keys.stats_counts(event.campaign_id, bucket, shard)
            pipe.hincrby(counts, field, 1)
            self._expire(pipe, counts)
            if event.unique_countable:
                unique = keys.stats_unique(
                    event.campaign_id, bucket, event.event, event.block_id, variant, shard
                )
                pipe.pfadd(unique, event.recipient_id)
                self._expire(pipe, unique)
        if event.unique_countable and not event.holdout:
            totals = keys.stats_totals(event.campaign_id, shard)
            pipe.hincrby(totals, f"{event.block_id}|{variant}|{event.event}", 1)
            self._expire(pipe, totals)

    def totals(
        self,
        campaign_id: str,
        block_id: str,
        *,
        client: Any = None,
        guard: NodeGuard | None = None,
    ) -> dict[str, tuple[int, int]]:
        """Human (or proxied) opens and human clicks per variant of a block, all time. With a
        ``guard`` (the open path), a shard whose node fails or is skipped is left out: the
        bandit decides on what answered rather than wait for every node."""
        batch = Batch(client if client is not None else self.redis, guard=guard)
        for shard in keys.SHARDS_READ:
            batch.hgetall(keys.stats_totals(campaign_id, shard))
        result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for raw in batch.execute(raising=guard is None):
            if isinstance(raw, BaseException):
                continue
            for name, count in raw.items():
                block, variant, event = name.split("|")
                if block == block_id and event in COUNTED_EVENTS:
                    result[variant][COUNTED_EVENTS.index(event)] += int(count)
        return {variant: (opens, clicks) for variant, (opens, clicks) in result.items()}

    def report(
        self, campaign_id: str, buckets: Iterable[str], block_id: str | None = None
    ) -> list[ReportRow]:
        """One row per bucket (a UTC day, or a send's ``send_bucket``), block and variant that
        had events."""
        day_list = list(buckets)
        batch = Batch(self.redis)
        for day in day_list:
            for shard in keys.SHARDS_READ:
                batch.hgetall(keys.stats_counts(campaign_id, day, shard))
        day_counts = iter(batch.execute())
        rows: dict[tuple[str, str, str], ReportRow] = {}
        for day in day_list:
            for _ in keys.SHARDS_READ:
                for name, count in next(day_counts).items():
                    event, block, variant, client, kind = name.split("|")
                    if block_id is not None and block != block_id:
                        continue
                    row = rows.setdefault((day, block, variant), ReportRow(day, block, variant))
                    row.add(event, client, kind, int(count))
        ordered = sorted(rows.values(), key=lambda r: (r.day, r.block_id, r.variant))
        self.fill_uniques(campaign_id, [([row.day], row) for row in ordered])
        return ordered

    def fill_uniques(self, campaign_id: str, wanted: list[tuple[list[str], ReportRow]]) -> None:
        """Set each row's unique opens and clicks over its buckets (a recipient in several
        buckets counts once): per shard one PFCOUNT over the buckets (a shard's keys share a
        hash slot), summed over the shards; all in one batch."""
        batch = Batch(self.redis)
        for buckets, row in wanted:
            for event in COUNTED_EVENTS:
                for shard in keys.SHARDS_READ:
                    batch.add(
                        "PFCOUNT",
                        *[
                            keys.stats_unique(
                                campaign_id, b, event, row.block_id, row.variant, shard
                            )
                            for b in buckets
                        ],
                    )
        counts = iter(batch.execute())
        for _, row in wanted:
            row.unique_opens = sum(int(next(counts)) for _ in keys.SHARDS_READ)
            row.unique_clicks = sum(int(next(counts)) for _ in keys.SHARDS_READ)


@dataclass
class ReportRow:
    """Counts for one day, block and variant."""

    day: str
    block_id: str
    variant: str
    opens: int = 0
    unique_opens: int = 0
    machine_opens: int = 0
    unknown_opens: int = 0
    human_opens: int = 0
    clicks: int = 0
    unique_clicks: int = 0
    bot_clicks: int = 0
    by_client: dict[str, dict[str, int]] = field(default_factory=dict)

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

    @property
    def click_to_open_rate(self) -> float | None:
        """Unique human clicks per unique open."""
        return self.unique_clicks / self.unique_opens if self.unique_opens else None

    def as_dict(self) -> dict[str, Any]:
        """The row as the reports API shows it."""
        return {
            "day": self.day,
            "block": self.block_id,
            "variant": self.variant,
            "opens": self.opens,
            "human_opens": self.human_opens,
            "machine_opens": self.machine_opens,
            "unknown_opens": self.unknown_opens,
            "unique_opens": self.unique_opens,
            "clicks": self.clicks,
            "unique_clicks": self.unique_clicks,
            "bot_clicks": self.bot_clicks,
            "click_to_open_rate": self.click_to_open_rate,
            "by_client": self.by_client,
        }


class CachedTotals:
    """``StatsStore.totals`` remembered per block for a few seconds, for the bandit's hot path.

    The first ask of a block reads the totals; after ``seconds`` the held ones are still
    answered while one background thread reads them again, so an open never waits for the
    counters of every shard (which live on every node of a cluster). Reads go through the open
    path's client and breakers."""

    def __init__(
        self,
        stats: StatsStore,
        seconds: float,
        client: Any = None,
        guard: NodeGuard | None = None,
    ) -> None:
        self.stats = stats
        self.seconds = seconds
        self.client = client
        self.guard = guard
        self._cache: dict[tuple[str, str], tuple[float, dict[str, tuple[int, int]]]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, campaign_id: str, block_id: str) -> dict[str, tuple[int, int]]:
        key = (campaign_id, block_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None:
            return self._read(key)
        if now - cached[0] >= self.seconds:
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:
                threading.Thread(target=self._refresh, args=(key,), daemon=True).start()
        return cached[1]

    def _read(self, key: tuple[str, str]) -> dict[str, tuple[int, int]]:
        totals = self.stats.totals(*key, client=self.client, guard=self.guard)
        self._cache[key] = (time.monotonic(), totals)
        return totals

    def _refresh(self, key: tuple[str, str]) -> None:
        try:
            self._read(key)
        except Exception:  # the held totals stay; the next ask tries again
            log.debug("bandit totals of %s/%s not refreshed", *key)
        finally:
            with self._lock:
                self._refreshing.discard(key)
