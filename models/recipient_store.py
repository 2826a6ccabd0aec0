"""Profiles, segments and scores in Redis, one hash slot per recipient, each key with a TTL."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from models import keys
from models.campaigns import utc_now
from models.recipients import ProfileUpsert, ScoresUpsert, ScoreValue

UPDATED_AT_FIELD = "_updated_at"
BULK_CHUNK = 1000


def decode_profile(raw: dict[str, str]) -> dict[str, Any]:
    """A profile hash as stored (JSON values) back to a dict."""
    return {name: json.loads(value) for name, value in raw.items()}


def decode_scores(raw: dict[str, str]) -> dict[str, ScoreValue]:
    """A scores hash as stored back to score records."""
    return {name: ScoreValue.model_validate_json(value) for name, value in raw.items()}


class RecipientStore:
    """Writes and reads recipient data. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl = ttl_seconds

    def _queue_profile(self, pipe: Any, upsert: ProfileUpsert) -> None:
        rid = upsert.recipient_id
        key = keys.profile(rid)
        present = {k: json.dumps(v) for k, v in upsert.attributes.items() if v is not None}
        absent = [k for k, v in upsert.attributes.items() if v is None]
        updated_at = (upsert.updated_at or utc_now()).isoformat()
        pipe.hset(key, mapping={**present, UPDATED_AT_FIELD: json.dumps(updated_at)})
        if absent:
            pipe.hdel(key, *absent)
        pipe.expire(key, self.ttl)
        segments_key = keys.segments(rid)
        if upsert.segments is not None:
            pipe.delete(segments_key)
            if upsert.segments:
                pipe.sadd(segments_key, *upsert.segments)
        pipe.expire(segments_key, self.ttl)

    def _queue_scores(self, pipe: Any, upsert: ScoresUpsert) -> None:
        key = keys.scores(upsert.recipient_id)
        now = utc_now()
        mapping = {
            name: score.model_copy(
                update={"computed_at": score.computed_at or now}
            ).model_dump_json()
            for name, score in upsert.scores.items()
        }
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, self.ttl)

    def upsert_profiles(self, upserts: Iterable[ProfileUpsert]) -> int:
        """Merge profiles, pipelined in chunks; return how many were written."""
        return self._pipelined(upserts, self._queue_profile)

    def upsert_scores(self, upserts: Iterable[ScoresUpsert]) -> int:
        """Set scores, pipelined in chunks; return how many recipients were written."""
        return self._pipelined(upserts, self._queue_scores)

    def _pipelined(self, items: Iterable[Any], queue: Any) -> int:
        count = 0
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            queue(pipe, item)
            count += 1
            if count % BULK_CHUNK == 0:
                pipe.execute()
        pipe.execute()
        return count

    def get_profile(self, recipient_id: str) -> dict[str, Any] | None:
        """The profile with its segments, or None if Blanco has no data for the recipient."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.profile(recipient_id))
        pipe.smembers(keys.segments(recipient_id))
        raw, segments = pipe.execute()
        if not raw:
            return None
        attributes = decode_profile(raw)
        updated_at = attributes.pop(UPDATED_AT_FIELD, None)
        return {
            "recipient_id": recipient_id,
            "attributes": attributes,
            "segments": sorted(segments),
            "updated_at": updated_at,
        }

    def get_scores(self, recipient_id: str) -> dict[str, ScoreValue]:
        """Every score of the recipient, by model name."""
        return decode_scores(self.redis.hgetall(keys.scores(recipient_id)))

    def erase(self, recipient_id: str) -> int:
        """Delete every key holding data about the recipient; return how many existed."""
        return int(self.redis.delete(*keys.recipient_keys(recipient_id)))
