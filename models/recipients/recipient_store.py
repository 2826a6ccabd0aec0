"""Profiles, segments and scores in Redis, one hash slot per recipient, each key with a TTL.

A profile hash maps each attribute to its JSON value, tagged with the source that wrote it:
``crm:"Anna"``, ``web:34`` (a source slug starts with a letter and has no colon, and JSON text
never starts with a lowercase letter followed by a colon, so untagged JSON still reads: values
written before sources were recorded, or computed by segmentation). Fields starting with ``_``
are Blanco's own and never attributes (attribute names start with a letter):

- ``_updated_at``: the ``updated_at`` of the latest upsert (JSON text);
- ``_src:<source>``: when that source last wrote (Unix seconds): the upsert's ``updated_at``,
  else the time of the upsert;
- ``_last_order``: the Unix time of the latest order (kept by ``CustomerDataStore``; orders
  stored while the recipient had no profile yet are not counted).

An attribute is as fresh as its source's last write: a source that sends only what changed
still vouches for the rest of what it wrote. An attribute without a source has no known
freshness. The tag costs a few bytes and no extra field, so bulk ingest stays fast and small
profiles stay in Redis's compact hash encoding. ``decode_profile`` gives the attributes alone;
``read_profile`` also their sources and the hidden fields, which ``source_times``,
``AttributeTimes`` and ``last_order`` read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import redis

from models.campaigns.specs import utc_now
from models.recipients.tombstones import Tombstones, send_unless_erased
from models.recipients.upserts import ProfileUpsert, ScoresUpsert, ScoreValue
from models.storage import keys
from models.storage.batch import Command

UPDATED_AT_FIELD = "_updated_at"
HIDDEN_PREFIX = "_"
SOURCE_PREFIX = "_src:"
LAST_ORDER_FIELD = "_last_order"
SOURCE_TAG_END = ":"
_encode = json.JSONEncoder().encode
_encode_text = json.encoder.encode_basestring_ascii
_decode = json.JSONDecoder().raw_decode
"""Reads one stored JSON value (Blanco wrote it: no surrounding space to skip), about four
times faster than ``json.loads`` on short values; every open decodes the whole profile."""


def encode_value(value: Any) -> str:
    """``json.dumps(value)`` (the same text), faster for the common scalars: bulk ingest encodes
    every attribute value."""
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return _encode(value)


class StoredProfile(NamedTuple):
    """A profile hash as stored, split up: see ``read_profile``."""

    attributes: dict[str, Any]
    sources: dict[str, str]
    """The source of each attribute that has one."""
    hidden: dict[str, str]
    """Blanco's own fields (``_updated_at``, ``_src:<source>``, ``_last_order``) as stored."""


def read_profile(raw: Mapping[str, str]) -> StoredProfile:
    """A profile hash as stored: its attributes, their sources and the hidden fields."""
    attributes: dict[str, Any] = {}
    sources: dict[str, str] = {}
    hidden: dict[str, str] = {}
    for name, stored in raw.items():
        if name[:1] == HIDDEN_PREFIX:
            hidden[name] = stored
            continue
        if "a" <= stored[:1] <= "z":  # a source tag, or an untagged true or false
            source, tagged, text = stored.partition(SOURCE_TAG_END)
            if tagged:
                sources[name] = source
                stored = text
        attributes[name] = _decode(stored)[0]
    return StoredProfile(attributes, sources, hidden)


def decode_profile(raw: Mapping[str, str]) -> dict[str, Any]:
    """A profile hash as stored back to its attributes (hidden fields and sources left out)."""
    return read_profile(raw).attributes


def _moment(seconds: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC)


def source_times(hidden: Mapping[str, str]) -> dict[str, dt.datetime]:
    """When each source last wrote the profile, from its hidden fields (or the whole hash)."""
    return {
        name[len(SOURCE_PREFIX) :]: _moment(seconds)
        for name, seconds in hidden.items()
        if name.startswith(SOURCE_PREFIX)
    }


class AttributeTimes(Mapping[str, dt.datetime]):
    """How fresh each attribute is: when its source last wrote (attributes without a source, or
    whose source's time is missing, are absent). Worked out on demand: most opens never ask."""

    def __init__(self, profile: StoredProfile) -> None:
        self._sources = profile.sources
        self._hidden = profile.hidden

    def __getitem__(self, name: str) -> dt.datetime:
        return _moment(self._hidden[SOURCE_PREFIX + self._sources[name]])

    def __iter__(self) -> Iterator[str]:
        return (n for n, s in self._sources.items() if SOURCE_PREFIX + s in self._hidden)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def last_order(hidden: Mapping[str, str]) -> dt.datetime | None:
    """When the recipient's latest order was placed (where recorded), from the profile's
    hidden fields (or the whole hash)."""
    seconds = hidden.get(LAST_ORDER_FIELD)
    return _moment(seconds) if seconds else None


def decode_scores(raw: dict[str, str]) -> dict[str, ScoreValue]:
    """A scores hash as stored back to score records."""
    return {name: decode_score(value) for name, value in raw.items()}


@lru_cache(maxsize=16384)
def decode_score(document: str) -> ScoreValue:
    """One stored score record (cached: every open reads its recipient's scores, and a
    recipient's re-open reads the same documents; the records are frozen)."""
    return ScoreValue.model_validate_json(document)


class RecipientStore:
    """Writes and reads recipient data. Expects a client with ``decode_responses=True``."""

    def __init__(
        self, client: redis.Redis, ttl_seconds: int, tombstones: Tombstones | None = None
    ) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        self.tombstones = tombstones
        """With tombstones, writes for erased recipients are refused (ErasedRecipients)."""

    def profile_commands(self, upsert: ProfileUpsert) -> Iterator[Command]:
        """The Redis commands that merge one profile upsert."""
        rid = upsert.recipient_id
        key = keys.profile(rid)
        moment = upsert.updated_at or utc_now()
        seconds = int((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp())
        tag = upsert.source + SOURCE_TAG_END
        fields: list[str] = [
            UPDATED_AT_FIELD,
            _encode(moment.isoformat()),
            SOURCE_PREFIX + upsert.source,
            str(seconds),
        ]
        absent: list[str] = []
        for name, value in upsert.attributes.items():
            if value is None:
                absent.append(name)
            else:
                fields += (name, tag + encode_value(value))
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
        fields: list[str] = []
        for name, score in upsert.scores.items():  # each dated (``ScoresUpsert`` sees to it)
            fields += (name, score.model_dump_json(by_alias=True))
        yield ("HSET", key, *fields)
        yield ("EXPIRE", key, self.ttl)

    def upsert_profiles(self, upserts: Iterable[ProfileUpsert]) -> int:
        """Merge profiles, sent in pipelined chunks; return how many were written. Upserts for
        erased recipients are refused (ErasedRecipients, after the others are written)."""
        return send_unless_erased(
            self.redis, self.tombstones, upserts, self.profile_commands, _recipient
        )

    def upsert_scores(self, upserts: Iterable[ScoresUpsert]) -> int:
        """Set scores, sent in pipelined chunks; return how many recipients were written.
        Upserts for erased recipients are refused as for profiles."""
        return send_unless_erased(
            self.redis, self.tombstones, upserts, self.scores_commands, _recipient
        )

    def get_profile(self, recipient_id: str) -> dict[str, Any] | None:
        """The profile with its segments, or None if Blanco has no data for the recipient."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.profile(recipient_id))
        pipe.smembers(keys.segments(recipient_id))
        raw, segments = pipe.execute()
        if not raw:
            return None
        stored = read_profile(raw)
        updated_at = stored.hidden.get(UPDATED_AT_FIELD)
        return {
            "recipient_id": recipient_id,
            "attributes": stored.attributes,
            "segments": sorted(segments),
            "updated_at": json.loads(updated_at) if updated_at else None,
            "sources": {
                source: at.isoformat() for source, at in sorted(source_times(stored.hidden).items())
            },
            "attribute_sources": dict(sorted(stored.sources.items())),
        }

    def get_scores(self, recipient_id: str) -> dict[str, ScoreValue]:
        """Every score of the recipient, by model name."""
        return decode_scores(self.redis.hgetall(keys.scores(recipient_id)))


def _recipient(upsert: ProfileUpsert | ScoresUpsert) -> str:
    return upsert.recipient_id
