"""Ranking a content feed for one recipient: which item each newsletter slot shows.

The ranking is computed once per (recipient, send) and stored, so the slot images that email
clients fetch in parallel all read the same list: no item twice, and no race between fetches.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from models.campaigns.experiments import split_point
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Ranking
from models.newsletter.popularity import NO_POPULARITY, Popularity
from models.newsletter.recipient_history import NO_HISTORY, RecipientHistory, Unclicked
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
    explored: bool = False
    """Drawn at random among the eligible items (``exploration_share``): the emails an
    offline replay learns from."""

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
                **({"explored": True} if self.explored else {}),
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
                bool(data.get("explored", False)),
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
    history: RecipientHistory = NO_HISTORY,
    popularity: Popularity = NO_POPULARITY,
) -> SlotRanking:
    """The best ``slots`` items at ``now`` for a recipient, across days:

    * eligible: valid, available and not sold out, matching their targeting, not bought (with
      ``rules.exclude_bought``), and not in a category of ``exclude_bought_categories`` the
      recipient has bought in (whatever ``exclude_bought``);
    * weighted by priority × the recipient's affinity for the category × the item's learned
      popularity among similar recipients (``popularity``, to the power ``popularity_weight``)
      × the fatigue factor:
      ``fatigue_decay`` to the power of the recipient's last ``fatigue_sends`` sends that showed
      the item with no click on it since; an item so shown in each of the last
      ``max_in_a_row`` sends is left out (whatever ``fatigue_sends``);
    * at most ``max_per_category`` per category, and at least ``novelty_share`` of the slots
      (rounded up) for items none of the recipient's kept sends showed, when there are such.

    ``recipient`` None ranks generically: only untargeted items, by priority, without history.
    ``recipient_key`` breaks ties stably per recipient."""
    audience = recipient.audience(now) if recipient is not None else None
    personal = recipient is not None
    if not personal:
        history = NO_HISTORY

    unclicked_of: dict[str, Unclicked] = {}

    def unclicked(item: ContentItem) -> Unclicked:
        found = unclicked_of.get(item.id)
        if found is None:
            found = unclicked_of[item.id] = history.unclicked(
                item.id, rules.fatigue_sends, rules.max_in_a_row
            )
        return found

    def eligible(item: ContentItem) -> bool:
        if not item.valid_at(now):
            return False
        if personal and _bought(item, rules, history):
            return False
        if personal and rules.max_in_a_row and unclicked(item).in_a_row >= rules.max_in_a_row:
            return False
        if item.when is None:
            return True
        return audience is not None and item.when.matches(audience)

    def weight(item: ContentItem) -> float:
        if recipient is None:
            return item.priority
        value = item.priority
        if item.category is not None:
            score = recipient.scores.get(rules.affinity_prefix + item.category)
            value *= rules.default_affinity if score is None else max(score, 0.0)
        if rules.fatigue_sends:
            value *= rules.fatigue_decay ** unclicked(item).shown
        return value * popularity.factor(item.id, rules.popularity_weight)

    day = now.date().isoformat()
    explored = personal and split_point(recipient_key, "explore", day) < rules.exploration_share
    if explored:  # uniformly at random among the eligible items, for an offline replay
        ordered = sorted(
            (i for i in items if eligible(i)),
            key=lambda i: (split_point(recipient_key, f"explore:{day}", i.id), i.id),
        )
    else:
        ordered = sorted(
            (i for i in items if eligible(i)),
            key=lambda i: (-weight(i), split_point(recipient_key, "rank", i.id), i.id),
        )
    chosen: list[ContentItem] = []
    taken: set[str] = set()
    per_category: Counter[str] = Counter()

    def take(candidates: Iterable[ContentItem], until: int) -> None:
        for item in candidates:
            if len(chosen) >= until:
                return
            if item.id in taken:
                continue
            if item.category is not None and rules.max_per_category:
                if per_category[item.category] >= rules.max_per_category:
                    continue
                per_category[item.category] += 1
            chosen.append(item)
            taken.add(item.id)

    if personal and rules.novelty_share and slots and not explored:
        shown_before = history.ever_shown
        take(
            (i for i in ordered if i.id not in shown_before), math.ceil(rules.novelty_share * slots)
        )
    take(ordered, slots)
    place = {item.id: n for n, item in enumerate(ordered)}
    chosen.sort(key=lambda item: place[item.id])
    return SlotRanking(
        tuple(RankedItem(item.id, item.url) for item in chosen),
        recipient is None,
        now,
        feed_version,
        explored,
    )


def _bought(item: ContentItem, rules: Ranking, history: RecipientHistory) -> bool:
    """Whether the recipient bought the item (with ``exclude_bought``), or bought in a category
    of ``exclude_bought_categories`` (either way)."""
    if rules.exclude_bought and item.id in history.bought_items:
        return True
    return (
        item.category is not None
        and item.category in rules.exclude_bought_categories
        and item.category in history.bought_categories
    )
