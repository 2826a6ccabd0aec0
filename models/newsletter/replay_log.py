"""A newsletter's log of emails, as Blanco kept it, for the offline replay
(``models.newsletter.replay``).

For every recipient with stored slot rankings of the newsletter (one per send they opened, the
last 32 kept): what each slot showed, whether the ranking was explored (random), whether the
recipient clicked each slot's item in that send (the send's exact per-arm marks, kept
``BLANCO_SEND_MARKS_DAYS``), and the orders credited to a click on it (with their value in the
reporting currency). Rankings keyed ``day:`` (made on a day without a send) are left out: no
send marks say what was clicked in them. What the ranking knew is taken from the recipient's
data *now* (their scores and persona as they are, not as they were at the send): a replay over
recent days is the faithful one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from models.conversions.attribution import Attribution
from models.measurement.arm_counts import CLICKED, send_scope
from models.measurement.stats import shard_of
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX, slot_block_id
from models.newsletter.replay import LoggedEmail
from models.recipients.customer_data import Transaction
from models.recipients.recipient_reads import queue_recipient_reads
from models.recipients.score_freshness import ScoreMaxAges
from models.recipients.segmentation import PERSONA_ATTRIBUTE
from models.storage import keys
from models.storage.batch import Batch
from models.storage.scan import scan_every_primary

CHUNK = 200
_RANKINGS = keys.rankings("*")


def _recipients(client: Any) -> Iterator[str]:
    """The ids of the recipients with stored rankings (each once)."""
    start, end = _RANKINGS.split("*")
    seen: set[str] = set()
    for key in scan_every_primary(client, _RANKINGS, 1000):
        rid = key[len(start) : -len(end)]
        if rid not in seen:
            seen.add(rid)
            yield rid


def _day(send: str) -> dt.date | None:
    """The day of a send's ranking; None for a ranking keyed ``day:`` (made on a day without a
    send: it has no send marks, so its clicks are unknown, not absent) or a malformed key."""
    try:
        return dt.date.fromisoformat(send)
    except ValueError:
        return None


def export_log(
    client: Any,
    campaign_id: str,
    *,
    pseudonym: Callable[[str], str],
    rates: Mapping[str, Decimal],
    max_ages: ScoreMaxAges,
    now: dt.datetime,
) -> list[LoggedEmail]:
    """Every kept email of ``campaign_id``'s newsletter (see the module docstring)."""
    found: list[LoggedEmail] = []
    chunk: list[str] = []
    for rid in _recipients(client):
        chunk.append(rid)
        if len(chunk) >= CHUNK:
            found += _chunk(client, campaign_id, chunk, pseudonym, rates, max_ages, now)
            chunk = []
    if chunk:
        found += _chunk(client, campaign_id, chunk, pseudonym, rates, max_ages, now)
    return sorted(found, key=lambda e: (e.opened_at, e.recipient_id))


def _chunk(
    client: Any,
    campaign_id: str,
    ids: list[str],
    pseudonym: Callable[[str], str],
    rates: Mapping[str, Decimal],
    max_ages: ScoreMaxAges,
    now: dt.datetime,
) -> list[LoggedEmail]:
    read = Batch(client)
    asked = [
        (
            rid,
            read.hgetall(keys.rankings(rid)),
            read.hgetall(keys.attributions(rid)),
            read.hgetall(keys.transactions(rid)),
            queue_recipient_reads(read, rid, now),
        )
        for rid in ids
    ]
    replies = read.execute()
    emails = []
    marks = Batch(client)
    flags = []
    for rid, rankings, credits, orders, data in asked:
        recipient = data.parse(replies, now, max_ages)
        persona = recipient.profile.get(PERSONA_ATTRIBUTE)
        bought = _credited(replies[credits], replies[orders], rid, rates)
        for field, document in (replies[rankings] or {}).items():
            campaign, _, send = field.partition("/")
            day = _day(send)
            if campaign != campaign_id or day is None:
                continue
            stored = json.loads(document)
            shown = tuple(item for item, _ in stored["items"])
            name = pseudonym(rid)
            positions = [
                marks.hget(
                    keys.arm_flags(
                        campaign_id, send_scope(send), slot_block_id(n), item, shard_of(name)
                    ),
                    name,
                )
                for n, item in enumerate(shown, start=1)
            ]
            flags.append(positions)
            emails.append(
                LoggedEmail(
                    rid,
                    day,
                    dt.datetime.fromisoformat(stored["at"]),
                    shown,
                    frozenset(),
                    {item: v for (s, item), v in bought.items() if s == send and item in shown},
                    dict(recipient.scores),
                    persona if isinstance(persona, str) and persona else None,
                    bool(stored.get("explored", False)),
                )
            )
    marked = marks.execute() if len(marks) else []
    return [
        LoggedEmail(
            e.recipient_id,
            e.day,
            e.opened_at,
            e.shown,
            frozenset(
                item
                for item, at in zip(e.shown, positions, strict=True)
                if marked[at] is not None and int(marked[at]) & CLICKED
            ),
            e.bought,
            e.scores,
            e.persona,
            e.explored,
        )
        for e, positions in zip(emails, flags, strict=True)
    ]


def _credited(
    credits: Mapping[str, str],
    orders: Mapping[str, str],
    recipient_id: str,
    rates: Mapping[str, Decimal],
) -> dict[tuple[str, str], float]:
    """(send, item) -> the value of the orders credited to a click on that item in that send."""
    found: dict[tuple[str, str], float] = {}
    for order_id, document in (credits or {}).items():
        credit = Attribution.from_stored(document)
        touch = credit.touch if credit is not None else None
        stored = (orders or {}).get(order_id)
        if credit is None or touch is None or credit.basis != "click" or stored is None:
            continue
        if touch.send is None or not touch.block_id.startswith(SLOT_BLOCK_PREFIX):
            continue
        order = Transaction.from_stored(recipient_id, stored)
        rate = rates.get(order.currency)
        if rate is None:
            continue
        key = (touch.send, touch.variant)
        found[key] = found.get(key, 0.0) + float(order.amount * rate)
    return found
