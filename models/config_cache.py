"""Each worker's copy of the open-time configuration, kept current by version counters.

Campaigns, blocks, block versions, newsletters, sends, content feeds, asset metadata and the live
sources are read by every open but written rarely. They are kept in memory per worker, so that
an open reads only its recipient's keys (one round trip to one Redis node). Every write of
configuration moves a counter (``announce_config``); each worker checks the counters at most
every ``check_every`` seconds (``refresh``, one small read), and re-reads an entry the next time
it is used after the counter moved. A block edit or a live push therefore shows within about
``check_every`` seconds on every worker. Past block versions never change once written, so
they are never re-read.

Entries are kept even when they are stale, so the open path can still draw the last known
fallback of a block while Redis is away (``last_known_block``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from models.assets.metadata import Asset
from models.campaigns.campaign_store import parse_block
from models.campaigns.live_data import LiveValues
from models.campaigns.live_store import parse_sources
from models.campaigns.specs import Block, Campaign
from models.newsletter.feed_store import Feed, parse_feed
from models.newsletter.newsletter_store import parse_newsletter
from models.newsletter.newsletters import Newsletter
from models.newsletter.sends import Send
from models.storage import keys
from models.storage.batch import UNAVAILABLE, Batch, NodeGuard

log = logging.getLogger(__name__)
_UNCHECKED = object()
MAX_ABSENT = 50_000
"""Absent ids remembered per worker before that memory starts afresh (ids in URLs are
attacker-chosen; what exists is bounded by what admins stored, and always kept)."""


@dataclass(frozen=True)
class _Read:
    """One configuration value: where it is cached, how it is read and parsed."""

    entry: str
    command: tuple[str, ...]
    parse: Callable[[Any], Any]
    immutable: bool = False


@dataclass
class _Entry:
    value: Any
    generation: int


def _or_none(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda reply: parse(reply) if reply else None


class ConfigCache:
    """Configuration by id, read through to Redis when missing or stale. Reads raise Redis
    failures (and CircuitOpen); ``refresh`` never does."""

    def __init__(
        self,
        client: Any,
        *,
        check_every: float = 1.0,
        guard: NodeGuard | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.check_every = check_every
        self.guard = guard
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._absent: dict[str, int] = {}
        """Keys read as absent, with the generation they were read at."""
        self._feeds: dict[str, tuple[Feed, int]] = {}
        self._live: tuple[object, LiveValues] | None = None
        self._generation = 0
        self._versions: tuple[str | None, str | None, str | None] | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self.on_erasure: list[Callable[[], None]] = []
        """Called when a recipient was erased somewhere (after the first check)."""

    # keeping current

    def refresh(self, *, force: bool = False) -> None:
        """Check the version counters if ``check_every`` has passed since the last check (or
        now, with ``force``): a moved configuration counter makes every entry stale (re-read on
        next use), a moved live counter re-reads the live sources on next use. Never raises:
        when Redis is away, what is held is served."""
        now = self._monotonic()
        if now < self._next_check and not force:
            return
        with self._lock:
            if now < self._next_check and not force:
                return
            self._next_check = now + self.check_every
        batch = Batch(self.client, guard=self.guard)
        batch.get(keys.CONFIG_VERSION)
        batch.get(keys.LIVE_VERSION)
        batch.get(keys.PRIVACY_VERSION)
        try:
            config, live, privacy = batch.execute()
        except UNAVAILABLE:
            log.debug("configuration versions unavailable; serving what is held")
            return
        with self._lock:
            previous = self._versions
            self._versions = (config, live, privacy)
            if previous is None or previous[0] != config:
                self._generation += 1
        if previous is not None and previous[2] != privacy:
            for listener in self.on_erasure:
                listener()

    @property
    def generation(self) -> int:
        """Moves whenever the configuration counter moved (entries of older generations are
        re-read on use)."""
        return self._generation

    # reading

    def _values(self, reads: Sequence[_Read]) -> list[Any]:
        """The values of ``reads``, fetching those missing or stale in one batch. When that
        read fails and every value it wanted is held, however old, the held ones are served
        (and stay stale, so the next use asks again)."""
        generation = self._generation
        found: list[Any] = []
        missing: list[int] = []
        for index, read in enumerate(reads):
            entry = self._entries.get(read.entry)
            if entry is not None and (read.immutable or entry.generation == generation):
                found.append(entry.value)
            elif entry is None and self._absent.get(read.entry) == generation:
                found.append(None)
            else:
                found.append(entry.value if entry is not None else None)
                missing.append(index)
        if not missing:
            return found
        batch = Batch(self.client, guard=self.guard)
        for index in missing:
            batch.add(*reads[index].command)
        try:
            replies = batch.execute()
        except UNAVAILABLE:
            if all(reads[index].entry in self._entries for index in missing):
                return found  # what this worker last read: better than no personal content
            raise
        for index, reply in zip(missing, replies, strict=True):
            read = reads[index]
            value = read.parse(reply)
            found[index] = value
            if value is None:
                self._entries.pop(read.entry, None)
                if len(self._absent) >= MAX_ABSENT:
                    self._absent = {}  # ids in URLs are attacker-chosen: absences are cheap
                self._absent[read.entry] = generation
            else:
                self._entries[read.entry] = _Entry(value, generation)
        return found

    @staticmethod
    def _campaign(campaign_id: str) -> _Read:
        key = keys.campaign(campaign_id)
        return _Read(key, ("GET", key), _or_none(Campaign.model_validate_json))

    @staticmethod
    def _block(campaign_id: str, block_id: str) -> _Read:
        key = keys.block(campaign_id, block_id)
        return _Read(key, ("GET", key), _or_none(parse_block))

    @staticmethod
    def _newsletter(campaign_id: str) -> _Read:
        key = keys.newsletter(campaign_id)
        return _Read(key, ("GET", key), _or_none(parse_newsletter))

    def campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign, or None."""
        found: Campaign | None = self._values([self._campaign(campaign_id)])[0]
        return found

    def campaign_and_block(
        self, campaign_id: str, block_id: str
    ) -> tuple[Campaign | None, Block | None]:
        """The campaign and the current version of its block (one read when not held)."""
        campaign, block = self._values(
            [self._campaign(campaign_id), self._block(campaign_id, block_id)]
        )
        return campaign, block

    def campaign_and_newsletter(
        self, campaign_id: str
    ) -> tuple[Campaign | None, Newsletter | None]:
        """The campaign and its newsletter (one read when not held)."""
        campaign, newsletter = self._values(
            [self._campaign(campaign_id), self._newsletter(campaign_id)]
        )
        return campaign, newsletter

    def block(self, campaign_id: str, block_id: str) -> Block | None:
        """The current version of a block, or None."""
        found: Block | None = self._values([self._block(campaign_id, block_id)])[0]
        return found

    def block_version(self, current: Block, version: int) -> Block | None:
        """The block as it was at ``version`` (while the history keeps it)."""
        if version == current.version:
            return current
        return self.past_block(current.campaign_id, current.id, version)

    def past_block(self, campaign_id: str, block_id: str, version: int) -> Block | None:
        """A version of a block by number, even after the block was deleted."""
        key = keys.block_versions(campaign_id, block_id)
        read = _Read(
            f"{key}#{version}", ("HGET", key, str(version)), _or_none(parse_block), immutable=True
        )
        found: Block | None = self._values([read])[0]
        return found

    def last_known_block(self, campaign_id: str, block_id: str) -> Block | None:
        """The block as this worker last read it, however old (for fallbacks without Redis)."""
        entry = self._entries.get(keys.block(campaign_id, block_id))
        return entry.value if entry is not None else None

    def last_known_newsletter(self, campaign_id: str) -> Newsletter | None:
        """The newsletter as this worker last read it, however old."""
        entry = self._entries.get(keys.newsletter(campaign_id))
        return entry.value if entry is not None else None

    def newsletter(self, campaign_id: str) -> Newsletter | None:
        """The campaign's newsletter, or None."""
        found: Newsletter | None = self._values([self._newsletter(campaign_id)])[0]
        return found

    def send(self, campaign_id: str, send_id: str) -> Send | None:
        """A recorded send of the campaign, or None."""
        key = keys.send(campaign_id, send_id)
        read = _Read(key, ("GET", key), _or_none(Send.model_validate_json))
        found: Send | None = self._values([read])[0]
        return found

    def block_count(self, campaign_id: str) -> int:
        """How many blocks the campaign has."""
        key = keys.block_index(campaign_id)
        read = _Read(f"{key}#count", ("SCARD", key), int)
        found: int = self._values([read])[0]
        return found

    def assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        """The metadata of the uploaded images among ``asset_ids``, by id (missing ones are
        left out)."""
        reads = [
            _Read(
                keys.asset_meta(asset_id),
                ("GET", keys.asset_meta(asset_id)),
                _or_none(Asset.model_validate_json),
            )
            for asset_id in asset_ids
        ]
        values = self._values(reads)
        return {a: v for a, v in zip(asset_ids, values, strict=True) if v is not None}

    def feed(self, feed_id: str) -> Feed:
        """The feed's items; re-read after the configuration moved only if the feed's own
        version did."""
        generation = self._generation
        held = self._feeds.get(feed_id)
        if held is not None and held[1] == generation:
            return held[0]
        try:
            return self._reread_feed(feed_id, held, generation)
        except UNAVAILABLE:
            if held is None:
                raise
            return held[0]  # the items this worker last read

    def _reread_feed(self, feed_id: str, held: tuple[Feed, int] | None, generation: int) -> Feed:
        batch = Batch(self.client, guard=self.guard)
        version = batch.get(keys.feed_version(feed_id))
        items = None if held is not None else batch.hgetall(keys.feed_items(feed_id))
        replies = batch.execute()
        if held is not None and int(replies[version] or 0) == held[0].version:
            self._feeds[feed_id] = (held[0], generation)
            return held[0]
        if items is None:  # the version moved: read the items with it (one hash slot)
            batch = Batch(self.client, guard=self.guard)
            version = batch.get(keys.feed_version(feed_id))
            items = batch.hgetall(keys.feed_items(feed_id))
            replies = batch.execute()
        feed = parse_feed(feed_id, replies[version], replies[items])
        self._feeds[feed_id] = (feed, generation)
        return feed

    def live(self) -> LiveValues:
        """Every live source as last pushed (fresh or not: callers judge freshness), re-read
        when the live counter moved."""
        versions = self._versions
        wanted: object = versions[1] if versions is not None else _UNCHECKED
        held = self._live
        if held is not None and held[0] == wanted and wanted is not _UNCHECKED:
            return held[1]
        batch = Batch(self.client, guard=self.guard)
        batch.hgetall(keys.LIVE_SOURCES)
        try:
            (documents,) = batch.execute()
        except UNAVAILABLE:
            if held is None:
                raise
            return held[1]  # the last pushes this worker read (freshness is judged per open)
        values = parse_sources(documents)
        self._live = (wanted, values)
        return values
