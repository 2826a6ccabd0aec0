"""Today's audience of a newsletter, streamed: who gets the send, with their token and ESP
fields, in constant memory however many recipients there are.

Every profile is considered once (SCAN, in batches; a recipient SCAN returns twice is written
once, because membership of the send is recorded with SADD as rows go out). A recipient is in
the audience when their consent attribute is true, they are not suppressed, the audience rule
matches (on fresh scores only) and they are not in the holdout; the holdout is recorded with
the send, so that its behaviour can be compared with the audience's.

On a Redis Cluster the walk covers every primary. An export that sees slots migrating, or loses
a node, stops with an error and marks the send ``failed``: a short audience is never recorded as
exported.
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

from models.campaigns.conditions import MAX_EVENT_LOOKBACK_DAYS
from models.campaigns.experiments import split_point
from models.campaigns.specs import utc_now
from models.csv_cells import safe_cell
from models.errors import Conflict
from models.newsletter.newsletters import Newsletter
from models.newsletter.sends import Send, SendCounts, SendStore
from models.recipients.customer_data_store import queue_recent_event_index
from models.recipients.recipient_reads import (
    RecipientData,
    recipient_data,
)
from models.recipients.score_freshness import ScoreMaxAges
from models.storage import keys
from models.storage.batch import Batch
from models.storage.scan import scan_every_primary

ExportFormat = Literal["csv", "jsonl"]
TOKEN_COLUMN = "bl_token"  # noqa: S105 - a column name, not a secret
SEND_COLUMN = "bl_send"
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

    def queue(self, batch: Batch, recipient_id: str, now: dt.datetime) -> QueuedAudienceRead:
        """Queue the reads of one recipient (all on the recipient's hash slot)."""
        since = now - dt.timedelta(days=MAX_EVENT_LOOKBACK_DAYS)
        return QueuedAudienceRead(
            profile=batch.hgetall(keys.profile(recipient_id)),
            scores=batch.hgetall(keys.scores(recipient_id)),
            segments=batch.smembers(keys.segments(recipient_id)) if self.segments else None,
            events=queue_recent_event_index(batch, recipient_id, since) if self.events else None,
        )


@dataclass(frozen=True)
class QueuedAudienceRead:
    """Where one recipient's reads are in a batch (segments and events only when read)."""

    profile: int
    scores: int
    segments: int | None
    events: int | None

    def parse(self, replies: list[Any], now: dt.datetime, max_ages: ScoreMaxAges) -> RecipientData:
        """The recipient's data (what was not read is empty)."""
        return recipient_data(
            replies[self.profile],
            replies[self.scores],
            replies[self.segments] if self.segments is not None else set(),
            replies[self.events] if self.events is not None else [],
            now,
            max_ages,
        )


def judged_at(send: Send, now: dt.datetime) -> dt.datetime:
    """The moment an export judges its audience at (score freshness, "within N days"): the
    send's time when it is still ahead, so that an export made early (or for a later date)
    leaves out scores that will be stale when the email goes out; else now."""
    return max(now, send.send_time)


class AudienceExport:
    """Selects and streams one send's audience, recording the send as it goes."""

    def __init__(
        self,
        client: redis.Redis,
        sends: SendStore,
        sign: Callable[[str], str],
        max_ages: ScoreMaxAges,
        batch: int = BATCH,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.redis = client
        self.sends = sends
        self.sign = sign
        self.max_ages = max_ages
        self.batch = batch
        self.clock = clock
        """When the export finishes (the send records it)."""
        self._started: str | None = None

    def verdict(
        self,
        newsletter: Newsletter,
        recipient_id: str,
        data: RecipientData,
        suppressed: bool,
        now: dt.datetime,
        send_id: str = "",
    ) -> str:
        """The outcome for one recipient in the send ``send_id``."""
        if suppressed:
            return "suppressed"
        consent = newsletter.consent_attribute
        if newsletter.require_consent and data.profile.get(consent) is not True:
            return "no_consent"
        if newsletter.audience is not None and not newsletter.audience.matches(data.audience(now)):
            return "not_selected"
        purpose = "newsletter-holdout"
        if newsletter.holdout_rotation == "per_send":
            purpose += f":{send_id}"
        point = split_point(recipient_id, newsletter.campaign_id, "", purpose)
        return "holdout" if point < newsletter.holdout else "audience"

    def rows(
        self, newsletter: Newsletter, send: Send, now: dt.datetime
    ) -> Iterator[dict[str, Any]]:
        """The audience's rows, judged at ``judged_at(send, now)``; the send is recorded before
        the first (``start``, unless the caller did) and completed after the last, with the
        time it finished (a consumer that stops early leaves it ``exporting``). Conflict if
        another export of the same send is running."""
        if self._started != send.id:
            self.start(send)
        try:
            yield from self._rows(newsletter, send, judged_at(send, now))
        except Exception:
            # e.g. a cluster's slots moved (TopologyChanged) or a node failed: the send is
            # marked failed, never recorded as exported with a short audience
            failed = {"status": "failed", "finished_at": self.clock()}
            self.sends.save(send.model_copy(update=failed))
            raise
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
        profile_keys = scan_every_primary(
            self.redis, keys.PROFILE_KEY_PATTERN, self.batch, key_type="hash"
        )
        considered = keys.send_considered(newsletter.campaign_id, send.id)
        self.redis.unlink(considered)
        reads = AudienceReads.of(newsletter)
        while batch_keys := list(islice(profile_keys, self.batch)):
            ids = list(dict.fromkeys(p[0] for key in batch_keys if (p := keys.recipient_of(key))))
            if not ids:
                continue
            batch = Batch(self.redis)  # the campaign's node, and every recipient's
            seen_before = batch.smismember(considered, ids)
            batch.sadd(considered, *ids)
            batch.expire(considered, CONSIDERED_TTL_SECONDS)
            suppressed = batch.smismember(keys.suppressions(newsletter.campaign_id), ids)
            queued = [reads.queue(batch, rid, now) for rid in ids]
            replies = batch.execute()
            chosen: list[tuple[str, RecipientData, str]] = []
            for index, (rid, read) in enumerate(zip(ids, queued, strict=True)):
                if replies[seen_before][index]:
                    continue  # SCAN returned this recipient before
                data = read.parse(replies, now, self.max_ages)
                suppressed_now = bool(replies[suppressed][index])
                outcome = self.verdict(newsletter, rid, data, suppressed_now, now, send.id)
                counts.considered += 1
                setattr(counts, outcome, getattr(counts, outcome) + 1)
                if outcome in ("audience", "holdout"):
                    chosen.append((rid, data, outcome))
            writes = Batch(self.redis)
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
        finished = {"status": "exported", "finished_at": self.clock(), "counts": counts}
        self.sends.save(send.model_copy(update=finished))

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
        return safe_cell(json.dumps(value, ensure_ascii=False))
    if isinstance(value, str):
        return safe_cell(value)
    return str(value)
