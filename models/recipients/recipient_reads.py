"""One recipient's targeting data, read as part of a larger pipeline: profile (with how fresh
each attribute is), fresh scores, segments, recent events and when the recipient was last seen.
The block decision, slot ranking and audience export share it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.campaigns.conditions import MAX_EVENT_LOOKBACK_DAYS, Audience
from models.recipients.customer_data import last_event_times, parse_event_index
from models.recipients.customer_data_store import queue_recent_event_index
from models.recipients.recipient_store import (
    AttributeTimes,
    decode_scores,
    last_order,
    read_profile,
)
from models.recipients.score_freshness import ScoreMaxAges
from models.storage import keys
from models.storage.batch import Batch

CONSENT_ATTRIBUTE = "consent_personalisation"
"""A profile with this attribute set to ``false`` gets generic content and no profile use."""


@dataclass(frozen=True)
class RecipientData:
    """What Blanco knows about one recipient at one moment (stale scores left out)."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    events: Mapping[str, dt.datetime] = field(default_factory=dict)
    last_seen: dt.datetime | None = None
    """The latest customer event (within a year) or transaction, if any."""
    attributes_updated: Mapping[str, dt.datetime] = field(default_factory=dict)
    """How fresh each profile attribute is: when its source last wrote (absent: not known)."""

    @property
    def known(self) -> bool:
        """Whether Blanco holds any data about the recipient."""
        return bool(self.profile or self.scores or self.segments)

    @property
    def consents(self) -> bool:
        """Whether the recipient's data may be used for personal content."""
        return self.profile.get(CONSENT_ATTRIBUTE) is not False

    def audience(
        self,
        now: dt.datetime,
        client: str = "unknown",
        device: str = "unknown",
        live: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Audience:
        """The conditions' view of this recipient at ``now`` (with the live sources fresh
        then, if given)."""
        return Audience(
            now=now,
            profile=self.profile,
            scores=self.scores,
            segments=self.segments,
            client=client,
            device=device,
            events=self.events,
            last_seen=self.last_seen,
            attributes_updated=self.attributes_updated,
            live=live or {},
        )


@dataclass(frozen=True)
class QueuedRecipientReads:
    """Where the reads of one recipient's ``RecipientData`` are in a batch."""

    profile: int
    scores: int
    segments: int
    events: int

    def parse(self, replies: list[Any], now: dt.datetime, max_ages: ScoreMaxAges) -> RecipientData:
        """The recipient's data from the batch's replies."""
        return recipient_data(
            replies[self.profile],
            replies[self.scores],
            replies[self.segments],
            replies[self.events],
            now,
            max_ages,
        )


def queue_recipient_reads(
    batch: Batch, recipient_id: str, now: dt.datetime
) -> QueuedRecipientReads:
    """Queue the reads of ``RecipientData`` on ``batch`` (all on the recipient's hash slot)."""
    since = now - dt.timedelta(days=MAX_EVENT_LOOKBACK_DAYS)
    return QueuedRecipientReads(
        profile=batch.hgetall(keys.profile(recipient_id)),
        scores=batch.hgetall(keys.scores(recipient_id)),
        segments=batch.smembers(keys.segments(recipient_id)),
        events=queue_recent_event_index(batch, recipient_id, since),
    )


def recipient_data(
    raw_profile: Mapping[str, str],
    raw_scores: dict[str, str],
    segments: set[str],
    event_index: list[tuple[str, float]],
    now: dt.datetime,
    max_ages: ScoreMaxAges,
) -> RecipientData:
    """RecipientData from the stored profile, scores, segments and recent event index."""
    events = last_event_times(parse_event_index(event_index))
    stored = read_profile(raw_profile)
    ordered = last_order(stored.hidden)
    seen = [*events.values(), *([ordered] if ordered else [])]
    return RecipientData(
        profile=stored.attributes,
        scores=max_ages.fresh_values(decode_scores(raw_scores), now),
        segments=frozenset(segments),
        events=events,
        last_seen=max(seen, default=None),
        attributes_updated=AttributeTimes(stored),
    )
