"""What a recipient's past newsletters showed, what they clicked and what they bought: what
ranking across days reads (``models.newsletter.slot_ranking``).

Read in one round trip to the recipient's node, and only when a send's ranking is made (its
first slot open): the rankings kept for their past sends (each with its items and time), the
time of their last click on each item, and the set of what they bought. Every kept ranking is
read (at most 32 are kept), so the window of each rule across days (``fatigue_sends``,
``max_in_a_row``: at most 30 sends each) is covered whichever rules are on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.storage import keys
from models.storage.batch import Batch, Command, NodeGuard

CATEGORY_PREFIX = "category:"


@dataclass(frozen=True)
class PastSend:
    """One earlier send's ranking for the recipient."""

    key: str
    ranked_at: dt.datetime
    items: tuple[str, ...]


@dataclass(frozen=True)
class Unclicked:
    """An item's unclicked shows in the recipient's last sends (``RecipientHistory.unclicked``)."""

    shown: int
    """Sends of the fatigue window that showed it with no click since."""
    in_a_row: int
    """Sends in a row, from the newest, of the ``max_in_a_row`` window that did."""


@dataclass(frozen=True)
class RecipientHistory:
    """A recipient's past sends of one newsletter (newest first), clicks and purchases."""

    sends: tuple[PastSend, ...] = ()
    clicked: Mapping[str, float] = field(default_factory=dict)
    """Item id -> Unix time of the last click on it."""
    bought_items: frozenset[str] = frozenset()
    bought_categories: frozenset[str] = frozenset()

    @property
    def ever_shown(self) -> frozenset[str]:
        """Every item a kept past send showed."""
        return frozenset(item for send in self.sends for item in send.items)

    def unclicked(self, item_id: str, fatigue_sends: int, in_a_row_sends: int) -> Unclicked:
        """How the recipient's last sends showed ``item_id`` with no click on it since they were
        ranked: how many of the last ``fatigue_sends`` did, and how many of the last
        ``in_a_row_sends`` did in a row, from the newest (each rule reads its own window)."""
        clicked_at = self.clicked.get(item_id)
        ignored = [
            item_id in send.items
            and (clicked_at is None or clicked_at < send.ranked_at.timestamp())
            for send in self.sends[: max(fatigue_sends, in_a_row_sends)]
        ]
        recent = ignored[:in_a_row_sends]
        in_a_row = recent.index(False) if False in recent else len(recent)
        return Unclicked(shown=sum(ignored[:fatigue_sends]), in_a_row=in_a_row)


NO_HISTORY = RecipientHistory()


@dataclass(frozen=True)
class HistoryRead:
    """Where a queued history read's replies are."""

    rankings: int
    clicks: int
    bought: int
    campaign_id: str
    current: str

    def parse(self, replies: Sequence[Any]) -> RecipientHistory:
        """The history from the batch's replies (the current send's own ranking left out)."""
        sends = []
        prefix = f"{self.campaign_id}/"
        for name, document in (replies[self.rankings] or {}).items():
            if not name.startswith(prefix) or name == self.current:
                continue
            try:
                found = json.loads(document)
                sends.append(
                    PastSend(
                        name,
                        dt.datetime.fromisoformat(found["at"]),
                        tuple(item for item, _ in found["items"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        sends.sort(key=lambda s: s.ranked_at, reverse=True)
        clicked = {}
        for item, at in (replies[self.clicks] or {}).items():
            try:
                clicked[item] = float(at)
            except ValueError:
                continue
        bought = set(replies[self.bought] or ())
        categories = {
            b.removeprefix(CATEGORY_PREFIX) for b in bought if b.startswith(CATEGORY_PREFIX)
        }
        return RecipientHistory(
            tuple(sends),
            clicked,
            frozenset(b for b in bought if not b.startswith(CATEGORY_PREFIX)),
            frozenset(categories),
        )


def queue_history(batch: Batch, recipient_id: str, campaign_id: str, current: str) -> HistoryRead:
    """Queue the read of the recipient's history of ``campaign_id``'s sends (``current``: the
    ranking field of the send being ranked, left out)."""
    return HistoryRead(
        batch.hgetall(keys.rankings(recipient_id)),
        batch.hgetall(keys.item_clicks(recipient_id)),
        batch.smembers(keys.bought(recipient_id)),
        campaign_id,
        current,
    )


def read_history(
    client: Any, recipient_id: str, campaign_id: str, current: str, guard: NodeGuard | None
) -> RecipientHistory:
    """The recipient's history, in one round trip to their node (raises Redis failures)."""
    batch = Batch(client, guard=guard)
    read = queue_history(batch, recipient_id, campaign_id, current)
    return read.parse(batch.execute())


def bought_commands(
    recipient_id: str, item_ids: Sequence[str], categories: Sequence[str], ttl: int
) -> list[Command]:
    """The commands that add an order's items and categories to what the recipient bought."""
    members = [*item_ids, *(CATEGORY_PREFIX + c for c in categories)]
    if not members:
        return []
    key = keys.bought(recipient_id)
    return [("SADD", key, *members), ("EXPIRE", key, ttl)]


def item_click_commands(recipient_id: str, item_id: str, at: float, ttl: int) -> list[Command]:
    """The commands that remember a click on a newsletter item (fatigue resets on it)."""
    key = keys.item_clicks(recipient_id)
    return [("HSET", key, item_id, repr(at)), ("EXPIRE", key, ttl)]
