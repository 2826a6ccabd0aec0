"""Today's audience of a newsletter, streamed: who gets the send, with their token and ESP
fields, in constant memory however many recipients there are.

Every profile is considered once (SCAN, in batches; a recipient SCAN returns twice is written
once, because membership of the send is recorded with SADD as rows go out). A recipient is in
the audience when their consent attribute is true, they are not suppressed, the audience rule
matches (on fresh scores only) and they are not in the holdout; the holdout is recorded with
the send, so that its behaviour can be compared with the audience's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

import redis

from models import keys
from models.bulk_pipeline import PackedPipeline
from models.conditions import MAX_EVENT_LOOKBACK_DAYS
from models.customer_data_store import queue_recent_event_index
from models.decision import split_point
from models.errors import Conflict
from models.newsletters import Newsletter
from models.recipient_reads import (
    RecipientData,
    parse_recipient_reads,
)
from models.score_freshness import ScoreMaxAges
from models.sends import Send, SendCounts, SendStore

ExportFormat = Literal["csv", "jsonl"]
TOKEN_COLUMN = "blanco_token"  # noqa: S105 - a column name, not a secret
SEND_COLUMN = "blanco_send_id"
BATCH = 500
CONSIDERED_TTL_SECONDS = 24 * 3600
EXPORT_LOCK_SECONDS = 3600
"""An export's lock expires after this long even if its process died."""


def columns(newsletter: Newsletter) -> list[str]:
    """The export's columns: id, token, send id, then the newsletter's ESP fields."""
    return ["recipient_id", TOKEN_COLUMN, SEND_COLUMN, *newsletter.esp_fields]


@dataclass(frozen=True)
class AudienceReads:
    """What the export reads per recipient: always the profile (consent, ESP fields) and the
    scores; segments and recent events only when the audience rule looks at them."""

    segments: bool
    events: bool

    @classmethod
    def of(cls, newsletter: Newsletter) -> AudienceReads:
        """The reads ``newsletter``'s audience rule needs (a key name in the rule's JSON is
        enough to read it: at worst one read too many, never one too few)."""
        rule = newsletter.audience
        text = rule.model_dump_json(by_alias=True) if rule is not None else ""
        return cls('"segment"' in text, '"event"' in text or '"seen_within_days"' in text)

    def queue(self, pipe: Any, ids: list[str], now: dt.datetime) -> int:
        """Queue the reads of every recipient in ``ids``; return how many replies each has."""
        since = now - dt.timedelta(days=MAX_EVENT_LOOKBACK_DAYS)
        for rid in ids:
            pipe.hgetall(keys.profile(rid))
            pipe.hgetall(keys.scores(rid))
            if self.segments:
                pipe.smembers(keys.segments(rid))
            if self.events:
                queue_recent_event_index(pipe, rid, since)
        return 2 + self.segments + self.events

    def parse(self, replies: list[Any], now: dt.datetime, max_ages: ScoreMaxAges) -> RecipientData:
        """One recipient's replies as RecipientData (what was not read is empty)."""
        profile, scores, *rest = replies
        segments = rest.pop(0) if self.segments else set()
        events = rest.pop(0) if self.events else []
        return parse_recipient_reads([profile, scores, segments, events], now, max_ages)


class AudienceExport:
    """Selects and streams one send's audience, recording the send as it goes."""

    def __init__(
        self,
        client: redis.Redis,
        sends: SendStore,
        sign: Callable[[str], str],
        max_ages: ScoreMaxAges,
        batch: int = BATCH,
    ) -> None:
        self.redis = client
        self.sends = sends
        self.sign = sign
        self.max_ages = max_ages
        self.batch = batch
        self._started: str | None = None

    def verdict(
        self,
        newsletter: Newsletter,
        recipient_id: str,
        data: RecipientData,
        suppressed: bool,
        now: dt.datetime,
    ) -> str:
        """The outcome for one recipient."""
        if suppressed:
            return "suppressed"
        consent = newsletter.consent_attribute
        if newsletter.require_consent and data.profile.get(consent) is not True:
            return "no_consent"
        if newsletter.audience is not None and not newsletter.audience.matches(data.audience(now)):
            return "not_selected"
        point = split_point(recipient_id, newsletter.campaign_id, "", "newsletter-holdout")
        return "holdout" if point < newsletter.holdout else "audience"

    def rows(
        self, newsletter: Newsletter, send: Send, now: dt.datetime
    ) -> Iterator[dict[str, Any]]:
        """The audience's rows; the send is recorded before the first (``start``, unless the
        caller did) and completed after the last (a consumer that stops early leaves it
        ``exporting``). Conflict if another export of the same send is running."""
        if self._started != send.id:
            self.start(send)
        try:
            yield from self._rows(newsletter, send, now)
        finally:
            self.redis.delete(keys.send_export_lock(send.campaign_id, send.id))

    def start(self, send: Send) -> None:
        """Take the send's export lock and record the send; Conflict if another export of it
        is running (two would each write part of the audience)."""
        lock = keys.send_export_lock(send.campaign_id, send.id)
        if not self.redis.set(lock, send.started_at.isoformat(), nx=True, ex=EXPORT_LOCK_SECONDS):
            raise Conflict(f"an export of send {send.id!r} is already running; try again later")
        self.sends.start(send)
        self._started = send.id

    def _rows(
        self, newsletter: Newsletter, send: Send, now: dt.datetime
    ) -> Iterator[dict[str, Any]]:
        counts = SendCounts()
        members = keys.send_members(newsletter.campaign_id, send.id)
        holdout = keys.send_holdout(newsletter.campaign_id, send.id)
        profile_keys = self.redis.scan_iter(
            match=keys.PROFILE_KEY_PATTERN, count=self.batch, _type="hash"
        )
        considered = keys.send_considered(newsletter.campaign_id, send.id)
        self.redis.unlink(considered)
        reads = AudienceReads.of(newsletter)
        while batch := list(islice(profile_keys, self.batch)):
            ids = list(dict.fromkeys(p[0] for key in batch if (p := keys.recipient_of(key))))
            if not ids:
                continue
            pipe = PackedPipeline(self.redis)
            pipe.smismember(considered, ids)
            pipe.sadd(considered, *ids)
            pipe.expire(considered, CONSIDERED_TTL_SECONDS)
            pipe.smismember(keys.suppressions(newsletter.campaign_id), ids)
            reads_each = reads.queue(pipe, ids, now)
            replies = pipe.execute()
            seen_before, suppressed, replies = replies[0], replies[3], replies[4:]
            chosen: list[tuple[str, RecipientData, str]] = []
            for index, rid in enumerate(ids):
                if seen_before[index]:
                    continue  # SCAN returned this recipient before
                start = index * reads_each
                data = reads.parse(replies[start : start + reads_each], now, self.max_ages)
                outcome = self.verdict(newsletter, rid, data, bool(suppressed[index]), now)
                counts.considered += 1
                setattr(counts, outcome, getattr(counts, outcome) + 1)
                if outcome in ("audience", "holdout"):
                    chosen.append((rid, data, outcome))
            writes = PackedPipeline(self.redis)
            for key, outcome in ((members, "audience"), (holdout, "holdout")):
                if ids_out := [rid for rid, _, chosen_as in chosen if chosen_as == outcome]:
                    writes.sadd(key, *ids_out)
            writes.execute()
            for rid, data, outcome in chosen:
                if outcome == "audience":
                    yield self._row(newsletter, send, rid, data)
        self.redis.unlink(considered)
        for key in (members, holdout):
            self.redis.expire(key, self.sends.ttl)
        self.sends.save(
            send.model_copy(update={"status": "exported", "finished_at": now, "counts": counts})
        )

    def _row(
        self, newsletter: Newsletter, send: Send, recipient_id: str, data: RecipientData
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "recipient_id": recipient_id,
            TOKEN_COLUMN: self.sign(recipient_id),
            SEND_COLUMN: send.id,
        }
        for name in newsletter.esp_fields:
            row[name] = data.profile.get(name)
        return row


def encode_rows(
    rows: Iterator[dict[str, Any]], names: list[str], fmt: ExportFormat
) -> Iterator[str]:
    """The rows as CSV (with a header) or JSON Lines, in chunks of text."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for count, row in enumerate(rows, 1):
        writer.writerow([_csv_value(row.get(name)) for name in names])
        if count % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
