"""Admin API keys: ``blk_<id>_<secret>``, stored as a SHA-256 hash of the secret, with scopes.

The secret has 256 bits of entropy, so a fast hash is as safe as a slow one here; comparison is
constant-time. The plain key is shown once, when it is created.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field

from models.campaigns.specs import utc_now
from models.errors import NotFound
from models.storage import keys

Scope = Literal["admin", "ingest", "channel"]
SCOPES: tuple[Scope, ...] = ("admin", "ingest", "channel")
KEY_PREFIX = "blk_"


class ApiKey(BaseModel):
    """A stored API key, without its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    created_at: dt.datetime
    secret_sha256: str

    def public(self) -> dict[str, object]:
        """The record as the API shows it: everything but the secret's hash."""
        return self.model_dump(mode="json", exclude={"secret_sha256"})

    def allows(self, scope: Scope) -> bool:
        """``admin`` may do everything; ``ingest`` only pushes and reads recipient data;
        ``channel`` only reads decisions on the cross-channel endpoints (``/x/v1``)."""
        return "admin" in self.scopes or scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStore:
    """Creates, checks and revokes API keys. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def create(self, name: str, scopes: list[Scope]) -> tuple[ApiKey, str]:
        """A new key and its plain text (shown only now)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKey(
            id=key_id,
            name=name,
            scopes=sorted(set(scopes)),
            created_at=utc_now(),
            secret_sha256=_hash(secret),
        )
        self.redis.hset(keys.API_KEYS, key_id, record.model_dump_json(by_alias=True))
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key record if ``presented`` is a valid, unrevoked key."""
        if not presented.startswith(KEY_PREFIX):
            return None
        key_id, _, secret = presented[len(KEY_PREFIX) :].partition("_")
        if not key_id or not secret:
            return None
        stored = self.redis.hget(keys.API_KEYS, key_id)
        if stored is None:
            return None
        record = ApiKey.model_validate_json(stored)
        if not hmac.compare_digest(record.secret_sha256, _hash(secret)):
            return None
        return record

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        records = [ApiKey.model_validate_json(v) for v in self.redis.hvals(keys.API_KEYS)]
        return sorted(records, key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> None:
        """Delete a key; NotFound if there is none with that id."""
        if not self.redis.hdel(keys.API_KEYS, key_id):
            raise NotFound(f"no API key {key_id!r}")
