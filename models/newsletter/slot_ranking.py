"""Ranking a content feed for one recipient: which item each newsletter slot shows.

The ranking is computed once per (recipient, send) and stored, so the slot images that email
clients fetch in parallel all read the same list: no item twice, and no race between fetches.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from models.campaigns.experiments import split_point
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Ranking
from models.recipients.recipient_reads import RecipientData


@dataclass(frozen=True)
class RankedItem:
    """An item as a slot shows it: its id and the URL its click goes to."""

    id: str
    url: str


@dataclass(frozen=True)
class SlotRanking:
    """The items of a recipient's slots, in slot order; ``generic`` when no personal data was
    used (consent off, unknown recipient)."""

    items: tuple[RankedItem, ...]
    generic: bool
    ranked_at: dt.datetime
    feed_version: int

    def item(self, slot: int) -> RankedItem | None:
        """The item of slot ``slot`` (1-based), or None when the feed ran out."""
        return self.items[slot - 1] if 0 < slot <= len(self.items) else None

    def to_json(self) -> str:
        """The stored form (remembered, so that reading it back costs nothing)."""
        document = json.dumps(
            {
                "items": [[i.id, i.url] for i in self.items],
                "generic": self.generic,
                "at": self.ranked_at.isoformat(),
                "feed": self.feed_version,
            }
        )
        _remember(document, self)
        return document

    @classmethod
    def from_json(cls, document: str) -> SlotRanking:
        """Read a stored ranking. Every slot image of an email reads the same one, so the
        rankings this worker read or wrote last are kept by their document (they are
        immutable)."""
        found = _known.get(document)
        if found is None:
            data = json.loads(document)
            found = cls(
                tuple(RankedItem(i, u) for i, u in data["items"]),
                bool(data["generic"]),
                dt.datetime.fromisoformat(data["at"]),
                int(data["feed"]),
            )
            _remember(document, found)
        return found


RANKINGS_KEPT = 4096
"""Rankings kept read per worker, by their stored document."""
_known: dict[str, SlotRanking] = {}


def _remember(document: str, ranking: SlotRanking) -> None:
    if len(_known) >= RANKINGS_KEPT:
        _known.clear()
    _known[document] = ranking


def rank_items(
    items: Iterable[ContentItem],
    rules: Ranking,
    recipient: RecipientData | None,
    recipient_key: str,
    now: dt.datetime,
    slots: int,
    feed_version: int = 0,
) -> SlotRanking:
    """The best ``slots`` items at ``now``: valid, matching their targeting, weighted by
    priority × the recipient's affinity for the category, at most ``max_per_category`` per
    category. ``recipient`` None ranks generically: only untargeted items, by priority.
    ``recipient_key`` breaks ties stably per recipient."""
    audience = recipient.audience(now) if recipient is not None else None

    def eligible(item: ContentItem) -> bool:
        if not item.valid_at(now):
            return False
        if item.when is None:
            return True
        return audience is not None and item.when.matches(audience)

    def weight(item: ContentItem) -> float:
        if recipient is None or item.category is None:
            return item.priority
        score = recipient.scores.get(rules.affinity_prefix + item.category)
        return item.priority * (rules.default_affinity if score is None else max(score, 0.0))

    ordered = sorted(
        (i for i in items if eligible(i)),
        key=lambda i: (-weight(i), split_point(recipient_key, "rank", i.id), i.id),
    )
    chosen: list[RankedItem] = []
    per_category: Counter[str] = Counter()
    for item in ordered:
        if len(chosen) == slots:
            break
        if item.category is not None and rules.max_per_category:
            if per_category[item.category] >= rules.max_per_category:
                continue
            per_category[item.category] += 1
        chosen.append(RankedItem(item.id, item.url))
    return SlotRanking(tuple(chosen), recipient is None, now, feed_version)
