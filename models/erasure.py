"""Erasing a recipient: remove their data, keep their id from coming back, and log the erasure.

``Eraser.erase`` does three things, in this order:

1. It adds a **tombstone** for the id (``models.recipients.tombstones``): from then on the
   open path treats the recipient's tokens as unverified and ingest refuses rows for the id.
   Workers are told (``announce_erasure``) so they drop the personal renders they hold.
2. It runs every **erasure step** (``erasure_steps``): each removes one kind of data about the
   recipient and says how many keys (or set members) it removed. The recipient's own keys
   (``keys.recipient_keys``: profile, segments, scores, decisions, transactions, events,
   rankings, recent clicks, last touches, attributions) are one step; the click references
   their attribution tokens point to (kept beside them, listed in their ``click-ids``) go
   first.
3. It appends an **audit entry** (``keys.ERASURE_AUDIT``, a bounded stream): the time, the API
   key that asked, the request id and the number of keys removed; never the recipient id or
   anything derived from it.

Data about a recipient kept outside their own keys (for example their id in a newsletter send's
member set) gets its own step: a class with a ``name`` and ``erase(client, recipient_id) -> int``,
listed in ``erasure_steps``. Calling ``erase`` again is harmless (the tombstone is a set member).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field

from models.conversions.click_refs import ClickRefsErasure
from models.newsletter.sends import SendMemberships
from models.recipients.tombstones import Tombstones
from models.storage import keys
from models.storage.config_versions import announce_erasure

AUDIT_MAX_LENGTH = 100_000
"""Erasure audit entries kept (approximately; the oldest go first)."""
MAX_AUDIT_LISTED = 1000


class ErasureStep(Protocol):
    """One kind of data about a recipient that an erasure removes."""

    name: str

    def erase(self, client: redis.Redis, recipient_id: str) -> int:
        """Remove it; return how many keys (or set members) were removed."""
        ...  # pragma: no cover - protocol


class RecipientKeys:
    """Every key under the recipient's hash tag (``models.storage.keys.recipient_keys``)."""

    name = "recipient_keys"

    def erase(self, client: redis.Redis, recipient_id: str) -> int:
        """Delete the keys; return how many existed."""
        return int(client.delete(*keys.recipient_keys(recipient_id)))


def erasure_steps() -> tuple[ErasureStep, ...]:
    """Every step of an erasure, in order. Add a step here for data about a recipient that is
    kept outside ``models.storage.keys.recipient_keys``."""
    return (ClickRefsErasure(), RecipientKeys(), SendMemberships())


class ErasureRecord(BaseModel):
    """One erasure as the audit log keeps it: who asked and when, never whom it was about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field("", description="The audit entry's id (its stream id).")
    at: dt.datetime
    api_key_id: str = Field(description="The id of the API key that asked.")
    api_key_name: str = Field(description="That key's name (as it was at the time).")
    request_id: str = Field("", description="The X-Request-ID of the request.")
    keys_removed: int = Field(ge=0, description="Keys (and set members) removed.")

    def stored(self) -> dict[str, str | int]:
        """The fields of the stream entry."""
        return self.model_dump(mode="json", exclude={"id"})

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str]) -> ErasureRecord:
        """A record read back from the stream."""
        return cls.model_validate({**fields, "id": entry_id})


class Eraser:
    """Erases recipients and keeps the audit log of erasures. Expects a ``decode_responses``
    client."""

    def __init__(
        self,
        client: redis.Redis,
        tombstones: Tombstones,
        steps: Sequence[ErasureStep] | None = None,
        audit_max_length: int = AUDIT_MAX_LENGTH,
    ) -> None:
        self.redis = client
        self.tombstones = tombstones
        self.steps = tuple(erasure_steps() if steps is None else steps)
        self.audit_max_length = audit_max_length

    def erase(
        self,
        recipient_id: str,
        *,
        api_key_id: str,
        api_key_name: str,
        request_id: str | None,
        now: dt.datetime,
    ) -> ErasureRecord:
        """Tombstone the id, run every step, then log the erasure; return the audit record."""
        self.tombstones.add(recipient_id)
        removed = sum(step.erase(self.redis, recipient_id) for step in self.steps)
        announce_erasure(self.redis)
        record = ErasureRecord(
            at=now,
            api_key_id=api_key_id,
            api_key_name=api_key_name,
            request_id=request_id or "",
            keys_removed=removed,
        )
        entry_id = self.redis.xadd(
            keys.ERASURE_AUDIT,
            record.stored(),
            maxlen=self.audit_max_length,
            approximate=True,
        )
        return record.model_copy(update={"id": str(entry_id)})

    def audit(self, limit: int = MAX_AUDIT_LISTED) -> list[ErasureRecord]:
        """The latest erasures, newest first."""
        entries = self.redis.xrevrange(keys.ERASURE_AUDIT, count=limit)
        return [ErasureRecord.from_entry(entry_id, fields) for entry_id, fields in entries]
