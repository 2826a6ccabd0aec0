"""Where live sources live: one Redis hash of every source, and a version token that moves
with every write (the same hash slot, one transaction).

Each worker keeps a copy of the sources (``models.config_cache``), checks the token about once a
second and re-reads them when it moved, so a push shows on every worker within about a second.
The copy holds the pushes' times, not a verdict: freshness is judged at each open, so a held
copy never makes stale data look fresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

import redis
from pydantic import ValidationError

from models.campaigns.live_data import MAX_SOURCES, LivePush, LiveSource, LiveValues
from models.errors import Conflict
from models.storage import keys

log = logging.getLogger(__name__)


class LiveStore:
    """Stores, reads and deletes live sources. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def put(self, push: LivePush, now: dt.datetime) -> LiveSource:
        """Replace the source's values as a whole, stamped ``now``; Conflict when it would be
        one source too many."""
        stored = LiveSource(
            source=push.source,
            values=push.values,
            max_age_seconds=push.max_age_seconds,
            updated_at=now,
        )

        def write(pipe: Any) -> None:
            if not pipe.hexists(keys.LIVE_SOURCES, push.source) and (
                pipe.hlen(keys.LIVE_SOURCES) >= MAX_SOURCES
            ):
                raise Conflict(
                    f"there are already {MAX_SOURCES} live sources; delete one before adding one"
                )
            pipe.multi()
            pipe.hset(keys.LIVE_SOURCES, push.source, stored.model_dump_json(by_alias=True))
            pipe.set(keys.LIVE_VERSION, secrets.token_hex(8))

        self.redis.transaction(write, keys.LIVE_SOURCES)
        return stored

    def get(self, source: str) -> LiveSource | None:
        """One source, if stored."""
        document = self.redis.hget(keys.LIVE_SOURCES, source)
        return _parse(source, document) if document else None

    def list(self) -> list[LiveSource]:
        """Every source, by name."""
        return [s for _, s in sorted(self.load()[1].sources.items())]

    def delete(self, source: str) -> bool:
        """Remove a source; whether it existed."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.LIVE_SOURCES, source)
        pipe.set(keys.LIVE_VERSION, secrets.token_hex(8))
        removed, _ = pipe.execute()
        return bool(removed)

    def load(self) -> tuple[str | None, LiveValues]:
        """The version token and every source, read together (one round-trip)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(keys.LIVE_VERSION)
        pipe.hgetall(keys.LIVE_SOURCES)
        version, documents = pipe.execute()
        return version, parse_sources(documents)


def parse_sources(documents: dict[str, str]) -> LiveValues:
    """The live sources from the stored hash (an unreadable one is left out)."""
    parsed = {name: _parse(name, document) for name, document in documents.items()}
    return LiveValues({n: s for n, s in parsed.items() if s is not None})


def _parse(name: str, document: str) -> LiveSource | None:
    try:
        return LiveSource.model_validate_json(document)
    except ValidationError:
        log.warning("unreadable live source %r; ignored", name)
        return None
