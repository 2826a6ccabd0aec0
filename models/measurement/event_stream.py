"""Reading a campaign's event stream, which is split over its measurement shards.

Opens, clicks and views are appended to one stream per shard (``keys.campaign_events``), so a
busy campaign's writes spread over a cluster's nodes. Readers merge the shards by entry id (the
time of the append, then its sequence).
"""

from __future__ import annotations

from typing import Any

from models.storage import keys
from models.storage.batch import Batch

Entry = tuple[str, dict[str, str]]


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
