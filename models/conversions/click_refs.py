"""Click references: what a click redirect's attribution token points to.

A person's click on a Blanco link is redirected with a short token (``bl_click`` by default)
that names only a slot of the Redis keyspace and a random click id, signed
(``server.tokens.TokenSigner.sign_click``): no recipient id, no personal data. The shop's page
keeps it in a first-party cookie and hands it back with the order (the conversion pixel or
script). The reference it points to holds the recipient and the click for the click window,
beside the recipient's own keys (the same slot), and the recipient's ``click-ids`` list it, so
that erasure removes it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from models.conversions.touches import Touch
from models.storage import keys
from models.storage.batch import Command

CLICK_ID_BYTES = 12


@dataclass(frozen=True)
class ClickRef:
    """Where an attribution token points: a Redis slot and a click id."""

    slot: int
    click_id: str

    @classmethod
    def new(cls, recipient_id: str) -> ClickRef:
        """A fresh reference for a click of ``recipient_id`` (in their slot)."""
        return cls(keys.recipient_slot(recipient_id), secrets.token_urlsafe(CLICK_ID_BYTES))

    @property
    def key(self) -> str:
        """The Redis key of the reference."""
        return keys.click_ref(self.slot, self.click_id)

    @property
    def orders_key(self) -> str:
        """The Redis key of the orders reported for the click without a key (the pixel)."""
        return keys.click_ref_orders(self.slot, self.click_id)


@dataclass(frozen=True)
class ReferencedClick:
    """What a reference holds: whose click it was, and the click."""

    recipient_id: str
    touch: Touch


def ref_commands(ref: ClickRef, recipient_id: str, touch: Touch, ttl: int) -> list[Command]:
    """The writes of a click reference (kept ``ttl`` seconds) and of its place in the
    recipient's list of references."""
    listed = keys.click_ids(recipient_id)
    at = touch.at.timestamp()
    return [
        ("SET", ref.key, json.dumps([recipient_id, touch.stored()]), "EX", ttl),
        ("ZADD", listed, at, ref.click_id),
        ("ZREMRANGEBYSCORE", listed, "-inf", at - ttl),
        ("EXPIRE", listed, ttl),
    ]


_CLAIM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def claim_keyless_order(client: Any, ref: ClickRef, order_name: str, limit: int, ttl: int) -> bool:
    """Whether an order reported without a key (the pixel) may be recorded for ``ref``'s
    click: each reference takes at most ``limit`` distinct orders (``order_name``: a keyed
    hash of the order id), and the same order again is always let through."""
    return bool(client.eval(_CLAIM, 1, ref.orders_key, order_name, limit, ttl))


def parse_ref(document: str | bytes | None) -> ReferencedClick | None:
    """A reference read back (None when it expired, or cannot be read)."""
    if document is None:
        return None
    try:
        recipient_id, stored = json.loads(document)
    except (ValueError, TypeError):
        return None
    touch = Touch.from_stored(stored)
    if not isinstance(recipient_id, str) or touch is None:
        return None
    return ReferencedClick(recipient_id, touch)


class ClickRefsErasure:
    """An erasure step: the recipient's click references (they live outside the recipient's own
    keys, in the same slot). Runs before the recipient's keys go, since their list is one."""

    name = "click_references"

    def erase(self, client: redis.Redis, recipient_id: str) -> int:
        """Delete the references the recipient's list names; return how many existed."""
        slot = keys.recipient_slot(recipient_id)
        ids = client.zrange(keys.click_ids(recipient_id), 0, -1)
        if not ids:
            return 0
        names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        client.delete(*(keys.click_ref_orders(slot, i) for i in names))
        return int(client.delete(*(keys.click_ref(slot, i) for i in names)))
