"""Tombstones of erased recipients: their ids may never come back.

An erasure (``models.erasure``) marks the id with an HMAC under each signing key, kept in a set
beside the recipient's keys (``keys.erased_marks``: the same Redis Cluster slot, under a tag
that names nobody), so the set holds no readable id. The open path treats an erased
recipient's tokens as unverified (fallback content, nothing stored or recorded), and ingest
refuses rows for the id (``send_unless_erased``, one round trip per chunk and node), also when
the data team's next import still carries it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import redis

from models.errors import Refusal, RowsRefused
from models.storage import keys
from models.storage.batch import UNAVAILABLE, Batch, Command, NodeGuard, send_items

TOMBSTONE_BYTES = 16
_DOMAIN = b"blanco-erased-v1\x00"
CHUNK = 2000
"""Rows per tombstone check when ingesting."""
ERASED_DETAIL = "this recipient was erased; an erased recipient id cannot be used again"

T = TypeVar("T")


class ErasedRecipients(RowsRefused):
    """Some items named erased recipients and were refused; the others were stored.

    ``refused`` holds their positions in what the store was given. The bulk ingest reports
    them as bad rows; a single write answers 409.
    """

    def __init__(self, refused: Sequence[int], stored: int) -> None:
        super().__init__(
            [Refusal(i, "/recipient_id", ERASED_DETAIL) for i in refused], stored, ERASED_DETAIL
        )
        self.refused = list(refused)


class Tombstones:
    """Marks of erased recipient ids: a keyed hash (MAC) of the id under each signing key.

    Each signing key gives a tombstone key, HMAC-SHA256(signing key, domain), distinct from
    the token signatures and pseudonyms made with the same signing key; a mark is the keyed
    BLAKE2b of the id under it (a MAC like HMAC, about four times faster per id, which bulk
    ingest computes for every row). Every current key marks an erasure and a mark under any
    current key counts, so a tombstone survives key rotation until every key that existed at
    the erasure is dropped.
    """

    def __init__(self, client: redis.Redis, signing_keys: Sequence[str]) -> None:
        if not signing_keys:
            raise ValueError("Tombstones need at least one key")
        self.redis = client
        self._legacy: frozenset[str] | None = None
        self._macs = tuple(
            hashlib.blake2b(
                key=hmac.digest(key.encode(), _DOMAIN, "sha256"), digest_size=TOMBSTONE_BYTES
            )
            for key in signing_keys
        )

    def marks(self, recipient_id: str) -> list[str]:
        """The tombstone marks of ``recipient_id``, one per key (no readable id in them)."""
        data = recipient_id.encode()
        found = []
        for keyed in self._macs:
            mac = keyed.copy()
            mac.update(data)
            found.append(mac.hexdigest())
        return found

    def legacy_marks(self, guard: NodeGuard | None = None) -> frozenset[str]:
        """The tombstones Blanco 0.1 kept in one set (``keys.ERASED_RECIPIENTS_V1``), read once
        per process (through ``guard``, the open path's breakers): nothing writes that set any
        more, and data moved from one Redis to a cluster brings it along. Empty (and read again
        next time) while its node is away."""
        held = self._legacy
        if held is None:
            reading = Batch(self.redis, guard=guard)
            reading.add("SMEMBERS", keys.ERASED_RECIPIENTS_V1)
            try:
                (members,) = reading.execute()
            except UNAVAILABLE:
                return frozenset()
            held = self._legacy = frozenset(
                m.decode() if isinstance(m, bytes) else str(m) for m in members
            )
        return held

    def queue_check(self, batch: Batch, recipient_id: str) -> TombstoneCheck:
        """Queue, on ``batch``, whether the recipient was erased: the tombstones kept beside
        the recipient's keys (the same node); Blanco 0.1's are checked here, in memory."""
        marks = self.marks(recipient_id)
        legacy = self.legacy_marks(batch.guard)
        return TombstoneCheck(
            batch.smismember(keys.erased_marks(recipient_id), marks),
            bool(legacy) and not legacy.isdisjoint(marks),
        )

    def is_erased(self, recipient_id: str) -> bool:
        """Whether ``recipient_id`` was erased."""
        batch = Batch(self.redis)
        check = self.queue_check(batch, recipient_id)
        return check.erased(batch.execute())

    def erased_among(self, recipient_ids: Collection[str]) -> set[str]:
        """Those of ``recipient_ids`` that were erased: one SMISMEMBER per tombstone set they
        fall in, in one round trip per node (and Blanco 0.1's, in memory)."""
        ids = list(recipient_ids)
        if not ids:
            return set()
        by_set: dict[str, list[str]] = {}
        for rid in ids:
            by_set.setdefault(keys.erased_marks(rid), []).append(rid)
        batch = Batch(self.redis)
        asked = [
            (members, batch.smismember(key, [m for rid in members for m in self.marks(rid)]))
            for key, members in by_set.items()
        ]
        replies = batch.execute()
        width = len(self._macs)
        erased = set()
        for members, position in asked:
            found = replies[position]
            erased |= {
                rid for n, rid in enumerate(members) if any(found[n * width : (n + 1) * width])
            }
        legacy = self.legacy_marks()
        if legacy:
            erased |= {rid for rid in ids if not legacy.isdisjoint(self.marks(rid))}
        return erased

    def add(self, recipient_id: str) -> None:
        """Mark ``recipient_id`` as erased."""
        self.redis.sadd(keys.erased_marks(recipient_id), *self.marks(recipient_id))

    def queue_unless_erased(
        self, batch: Batch, recipient_id: str, commands: Sequence[Command]
    ) -> int:
        """Queue ``commands`` (on the recipient's own keys) to run only if the recipient was not
        erased by then: one script, run where the recipient's keys and tombstones live, so a
        write that was on its way when an erasure happened re-creates nothing. Returns the
        position of its reply: the last command's reply, or None when it did not run."""
        marks = self.marks(recipient_id)
        if not self.legacy_marks(batch.guard).isdisjoint(marks):
            commands = [("PING",)]  # erased under Blanco 0.1: write nothing
        flat: list[str | bytes | int | float] = [len(marks), *marks]
        for command in commands:
            flat += [len(command), *command]
        return batch.add(
            "EVAL",
            _UNLESS_ERASED,
            2,
            keys.erased_marks(recipient_id),
            keys.profile(recipient_id),  # any of the recipient's keys: routes the script
            *flat,
            key=keys.profile(recipient_id),
        )


_UNLESS_ERASED = """
local marks = tonumber(ARGV[1])
for i = 1, marks do
  if redis.call('SISMEMBER', KEYS[1], ARGV[1 + i]) == 1 then return nil end
end
local at = marks + 2
local result = nil
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  local command = {}
  for j = 1, count do command[j] = ARGV[at + j] end
  at = at + count + 1
  if command[1] ~= 'PING' then result = redis.call(unpack(command)) end
end
return result
"""
"""Runs its commands unless one of the recipient's tombstone marks is in KEYS[1]."""


@dataclass(frozen=True)
class TombstoneCheck:
    """Where a queued tombstone check's reply is in its batch, and whether Blanco 0.1's
    tombstones already said so."""

    here: int
    legacy: bool = False

    def erased(self, replies: Sequence[Any]) -> bool:
        """Whether the replies say the recipient was erased."""
        return self.legacy or any(int(hit) for hit in replies[self.here])


def send_unless_erased(
    client: redis.Redis,
    tombstones: Tombstones | None,
    items: Iterable[T],
    commands: Callable[[T], Iterator[Command]],
    recipient_of: Callable[[T], str],
    chunk: int = CHUNK,
) -> int:
    """Send the commands of every item whose recipient was not erased (see
    ``models.storage.batch.send_items``), checking the tombstones once per chunk; return how
    many were stored, or raise ErasedRecipients after storing the others."""
    if tombstones is None:
        return send_items(client, items, commands)
    stored = 0
    refused: list[int] = []
    iterator = iter(items)
    offset = 0
    while batch := list(islice(iterator, chunk)):
        erased = tombstones.erased_among({recipient_of(item) for item in batch})
        if erased:
            refused += [offset + n for n, item in enumerate(batch) if recipient_of(item) in erased]
            batch = [item for item in batch if recipient_of(item) not in erased]
        stored += send_items(client, batch, commands)
        offset += chunk
    if refused:
        raise ErasedRecipients(refused, stored)
    return stored
