"""One recipient's targeting data, read as part of a larger pipeline: profile (with how fresh
each attribute is), fresh scores, segments, recent events and when the recipient was last seen.
The block decision, slot ranking and audience export share it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models import keys
from models.conditions import MAX_EVENT_LOOKBACK_DAYS, Audience
from models.customer_data import last_event_times, parse_event_index
from models.customer_data_store import queue_recent_event_index
from models.recipient_store import AttributeTimes, decode_scores, last_order, read_profile
from models.score_freshness import ScoreMaxAges

READS_PER_RECIPIENT = 4
"""Replies that ``queue_recipient_reads`` queues and ``parse_recipient_reads`` takes."""

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


def queue_recipient_reads(pipe: Any, recipient_id: str, now: dt.datetime) -> None:
    """Queue the reads of ``RecipientData`` on ``pipe`` (``READS_PER_RECIPIENT`` replies)."""
    pipe.hgetall(keys.profile(recipient_id))
    pipe.hgetall(keys.scores(recipient_id))
    pipe.smembers(keys.segments(recipient_id))
    queue_recent_event_index(pipe, recipient_id, now - dt.timedelta(days=MAX_EVENT_LOOKBACK_DAYS))


def parse_recipient_reads(
    replies: list[Any], now: dt.datetime, max_ages: ScoreMaxAges
) -> RecipientData:
    """The replies of ``queue_recipient_reads`` as RecipientData."""
    raw_profile, raw_scores, segments, event_index = replies[:READS_PER_RECIPIENT]
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
