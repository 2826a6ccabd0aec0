"""Reading a campaign's event stream, which is split over its measurement shards.

Opens, clicks and views are appended to one stream per shard (``keys.campaign_events``), so a
busy campaign's writes spread over a cluster's nodes. Readers merge the shards by entry id (the
time of the append, then its sequence). The campaign's cap on kept events is shared by its
shards (``shard_trim``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.storage import keys
from models.storage.batch import Batch

Entry = tuple[str, dict[str, str]]
EXACT_BELOW = 10_000
"""Shard caps under this are trimmed exactly: Redis's approximate trim only drops whole nodes
of about a hundred entries, which would let a small cap grow by half."""


@dataclass(frozen=True)
class ShardTrim:
    """How each shard stream of a campaign is trimmed when appended to."""

    max_length: int
    approximate: bool


def shard_trim(campaign_max_length: int) -> ShardTrim:
    """The trim of each shard stream, so the campaign keeps about ``campaign_max_length``
    events over all its shards."""
    per_shard = -(-campaign_max_length // keys.MEASUREMENT_SHARDS)
    return ShardTrim(per_shard, approximate=per_shard >= EXACT_BELOW)


def _order(entry: Entry) -> tuple[int, int]:
    milliseconds, _, sequence = entry[0].partition("-")
    return int(milliseconds), int(sequence or 0)


def campaign_event_entries(client: Any, campaign_id: str) -> list[Entry]:
    """Every kept event of the campaign, oldest first (a client with ``decode_responses``)."""
    batch = Batch(client)
    for shard in keys.SHARDS_READ:
        batch.add("XRANGE", keys.campaign_events(campaign_id, shard), "-", "+")
    entries: list[Entry] = []
    for stream in batch.execute():
        entries += [(str(entry_id), dict(_pairs(fields))) for entry_id, fields in stream]
    return sorted(entries, key=_order)


def _pairs(fields: Any) -> dict[str, str]:
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


def campaign_event_count(client: Any, campaign_id: str) -> int:
    """How many events of the campaign are kept, over every shard."""
    batch = Batch(client)
    for shard in keys.SHARDS_READ:
        batch.add("XLEN", keys.campaign_events(campaign_id, shard))
    return sum(int(length) for length in batch.execute())
