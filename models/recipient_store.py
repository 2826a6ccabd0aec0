"""Profiles, segments and scores in Redis, one hash slot per recipient, each key with a TTL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from models import keys
from models.bulk_pipeline import Command, send_items
from models.campaigns import utc_now
from models.recipients import ProfileUpsert, ScoresUpsert, ScoreValue

UPDATED_AT_FIELD = "_updated_at"


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

    def profile_commands(self, upsert: ProfileUpsert) -> Iterator[Command]:
        """The Redis commands that merge one profile upsert."""
        rid = upsert.recipient_id
        key = keys.profile(rid)
        updated_at = (upsert.updated_at or utc_now()).isoformat()
        fields: list[str] = [UPDATED_AT_FIELD, json.dumps(updated_at)]
        absent = []
        for name, value in upsert.attributes.items():
            if value is None:
                absent.append(name)
            else:
                fields += (name, json.dumps(value))
        yield ("HSET", key, *fields)
        if absent:
            yield ("HDEL", key, *absent)
        yield ("EXPIRE", key, self.ttl)
        segments_key = keys.segments(rid)
        if upsert.segments is not None:
            yield ("DEL", segments_key)
            if upsert.segments:
                yield ("SADD", segments_key, *upsert.segments)
        yield ("EXPIRE", segments_key, self.ttl)

    def scores_commands(self, upsert: ScoresUpsert) -> Iterator[Command]:
        """The Redis commands that set one recipient's scores."""
        key = keys.scores(upsert.recipient_id)
        now = utc_now()
        fields: list[str] = []
        for name, score in upsert.scores.items():
            if score.computed_at is None:
                score = score.model_copy(update={"computed_at": now})
            fields += (name, score.model_dump_json())
        yield ("HSET", key, *fields)
        yield ("EXPIRE", key, self.ttl)

    def upsert_profiles(self, upserts: Iterable[ProfileUpsert]) -> int:
        """Merge profiles, sent in pipelined chunks; return how many were written."""
        return send_items(self.redis, upserts, self.profile_commands)

    def upsert_scores(self, upserts: Iterable[ScoresUpsert]) -> int:
        """Set scores, sent in pipelined chunks; return how many recipients were written."""
        return send_items(self.redis, upserts, self.scores_commands)

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
