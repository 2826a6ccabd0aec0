"""The open's one read: everything an open needs from its recipient, in one round trip.

Every key read here carries the recipient's hash tag (``{r:<id>}``), and the tombstones of
erased ids are kept in the same slot, so on a Redis Cluster the read goes to one node. The
configuration (campaign, block, newsletter, send, feed) comes from the worker's cache
(``models.config_cache``), never from this read. The result is a record with named fields.

A click also leaves its mark here (the recipient's clicks of the last minute, for "every link at
once"): the same round trip writes it and reads the earlier ones. Other writes may share the round
trip too (``passengers``: the open path's queued records, on a single Redis).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from models.decision import Decision, decision_field
from models.newsletter.slot_ranking import SlotRanking
from models.recipients.recipient_reads import RecipientData, queue_recipient_reads
from models.recipients.score_freshness import ScoreMaxAges
from models.recipients.tombstones import Tombstones
from models.storage import keys
from models.storage.batch import Batch, NodeGuard

CLICKS_KEPT_SECONDS = 60
"""How long a click is remembered for burst detection."""


@dataclass(frozen=True)
class ClickMark:
    """A click to remember: on which link of which email (campaign and send), and when."""

    campaign_id: str
    send_id: str | None
    link: str
    at: float
    """Unix seconds."""

    @property
    def scope(self) -> str:
        """The prefix of the recipient's click members for this email."""
        return f"{self.campaign_id}|{self.send_id or '-'}|"


@dataclass(frozen=True)
class RecipientRead:
    """What one open read of its recipient."""

    data: RecipientData = field(default_factory=RecipientData)
    erased: bool = False
    """The recipient was erased: ``data`` is empty and nothing else was kept."""
    decisions: Mapping[tuple[str, str], Decision] = field(default_factory=dict)
    """The stored decisions asked for, by (campaign, block)."""
    ranking: SlotRanking | None = None
    """The stored slot ranking asked for, if there is one."""
    rankings_held: int = 0
    """How many rankings the recipient has stored (for pruning)."""
    earlier_clicks: tuple[float, ...] = ()
    """Times of the recipient's other clicks on the same email in the last minute."""


NOBODY = RecipientRead()
"""The read of an open without a (usable) recipient: nothing known."""


Passengers = Callable[[Batch], Callable[[Sequence[Any]], None] | None]
"""Adds other writes to the read's batch, to share its round trip (the open path's queued
records); returns what to do with their replies (None: nothing was added)."""


def _read_despite_refused_marks(
    batch: Batch, marks: tuple[int, ...], passengers: Passengers | None
) -> list[Any]:
    """The batch's replies to the read (the passengers get theirs first, whatever happens to
    the read); raises the first failure of the read, except where Redis refused only the click
    mark's writes (a full Redis, ``OOM``): the click still follows what the open showed, it
    just cannot be compared with the recipient's other clicks of the minute."""
    read = len(batch)
    arrived = passengers(batch) if passengers is not None else None
    try:
        replies = batch.execute(raising=False)
    except BaseException as failure:  # nothing was answered: the passengers hear why
        if arrived is not None:
            arrived([failure] * (len(batch) - read))
        raise
    if arrived is not None:
        arrived(replies[read:])
        del replies[read:]
    for position, reply in enumerate(replies):
        if isinstance(reply, BaseException):
            refused_mark = position in marks and isinstance(reply, redis.ResponseError)
            if not refused_mark:
                raise reply
            replies[position] = None
    return replies


def read_recipient(
    client: Any,
    recipient_id: str,
    now: dt.datetime,
    *,
    tombstones: Tombstones,
    max_ages: ScoreMaxAges,
    guard: NodeGuard | None = None,
    blocks: Sequence[tuple[str, str]] = (),
    ranking_field: str | None = None,
    click: ClickMark | None = None,
    passengers: Passengers | None = None,
) -> RecipientRead:
    """Read the recipient's targeting data, the stored decisions of ``blocks``, the ranking
    under ``ranking_field`` and (with ``click``) the earlier clicks while remembering this one,
    in one round trip to the recipient's node (with the ``passengers``' writes, if any). Raises
    Redis failures of the read (and CircuitOpen)."""
    batch = Batch(client, guard=guard)
    data = queue_recipient_reads(batch, recipient_id, now)
    erased = tombstones.queue_check(batch, recipient_id)
    decisions = [
        batch.hget(keys.decisions(recipient_id), decision_field(campaign_id, block_id))
        for campaign_id, block_id in blocks
    ]
    if ranking_field is not None:
        ranking = batch.hget(keys.rankings(recipient_id), ranking_field)
        held = batch.hlen(keys.rankings(recipient_id))
    marks: tuple[int, ...] = ()
    if click is not None:
        clicks = keys.recent_clicks(recipient_id)
        trimmed = batch.zremrangebyscore(clicks, "-inf", click.at - CLICKS_KEPT_SECONDS)
        recent = batch.zrangebyscore(
            clicks, click.at - CLICKS_KEPT_SECONDS, "+inf", withscores=True
        )
        marked = batch.zadd(clicks, {click.scope + click.link: click.at})
        marks = (trimmed, marked, batch.expire(clicks, CLICKS_KEPT_SECONDS * 2))
    replies = _read_despite_refused_marks(batch, marks, passengers)
    if erased.erased(replies):
        if click is not None:  # keep nothing of an erased recipient, not even this click
            forget = Batch(client, guard=guard)
            forget.add("DEL", keys.recent_clicks(recipient_id))
            forget.execute()
        return RecipientRead(erased=True)
    stored = {
        (campaign_id, block_id): Decision.from_json(campaign_id, block_id, replies[position])
        for (campaign_id, block_id), position in zip(blocks, decisions, strict=True)
        if replies[position]
    }
    earlier: tuple[float, ...] = ()
    if click is not None:
        this = click.scope + click.link
        earlier = tuple(
            float(score)
            for member, score in replies[recent]
            if str(member).startswith(click.scope) and str(member) != this
        )
    return RecipientRead(
        data=data.parse(replies, now, max_ages),
        decisions=stored,
        ranking=(
            SlotRanking.from_json(replies[ranking])
            if ranking_field is not None and replies[ranking]
            else None
        ),
        rankings_held=int(replies[held]) if ranking_field is not None else 0,
        earlier_clicks=earlier,
    )
