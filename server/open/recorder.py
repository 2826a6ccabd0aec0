"""Recording opens, clicks and views: the decision, the stream event and the counters, written in
one batch, either inline or by a background thread per worker that batches them.

In the background (the default), an open costs the request only the building of a small
record, and no round trip of its own. On a single Redis (or a Sentinel-managed one) the next
opens' reads carry the waiting records, a few each, in the round trip they make anyway
(``ride_along``); a thread writes what is still waiting ``LINGER_SECONDS`` later (a quiet moment)
in one pipeline. On a Redis Cluster the records' counters live on other nodes than a read, so
the thread writes them all, to every node the batch touches at once (the recipient's node for
the decision, the shard nodes for the counters). The queue is bounded; a record that does not
fit, or one of whose writes fails, is counted as lost (``blanco_events_lost``), never raised; the
records of a batch whose writes all went through are not. Workers flush what is queued when they
exit (a gunicorn hook). Inline recording (``BLANCO_RECORD_IN_BACKGROUND=false``) writes before
the response, which tests use to read Redis right after a request.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from models.conversions.click_refs import ClickRef, ref_commands
from models.conversions.touches import Touch, ViewsWritten, is_touch, touch_commands
from models.decision import Decision, decision_store_commands
from models.measurement.arm_counts import load_script
from models.measurement.event_stream import shard_trim
from models.measurement.stats import HOLDOUT_KIND, CountedEvent, shard_of, variant_label
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX
from models.newsletter.recipient_history import item_click_commands
from models.process_id import current_pid
from models.storage import keys
from models.storage.batch import Batch, Command, NodeGuard, Sent
from models.storage.clients import LazyCluster
from server.services import Services

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000
MAX_BATCH = 200
"""Records per write (about a dozen commands each): a write stays a few thousand commands, one
round trip per node it touches, and a failure loses only its own batch."""
LINGER_SECONDS = 0.1
"""How long the writer waits after the first queued record before writing the batch: under load
it gathers tens of records into one write (fewer wake-ups and round trips than a write every
couple of records), and a stored decision is still there long before any human clicks."""
RIDE_ALONG = 8
"""Records at most that one open's read carries (on a single Redis): under load, records travel
with the next opens' reads, in round trips that happen anyway, and the writer thread rarely has
anything left to send."""


@dataclass(frozen=True)
class Record:
    """One open or click to write."""

    recipient_id: str
    pseudonym: str
    shown: Decision
    event: str
    client: str
    kind: str
    store_decision: bool
    send: str | None
    at: dt.datetime
    click_ref: ClickRef | None = None
    """A person's click: the reference its redirect's attribution token names."""
    persona: str | None = None
    """The recipient's persona, for a newsletter slot's event."""


Lost = Callable[[Sequence[Record], Exception | None], None]
"""Called with records that could not be written (the error, or None when the queue was full)."""


class Recorder:
    """Writes records inline or from a background thread (started lazily, once per process,
    so it survives gunicorn's fork)."""

    def __init__(
        self,
        services: Services,
        lost: Lost,
        *,
        background: bool,
        guard: NodeGuard | None = None,
        max_queued: int = MAX_QUEUED,
        max_batch: int = MAX_BATCH,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.services = services
        self.guard = guard
        settings = services.settings
        self.trim = shard_trim(settings.event_stream_max_length)
        self.click_ttl = round(settings.attribution_click_days * 86400)
        self.view_ttl = round(settings.attribution_view_days * 86400)
        self.views = ViewsWritten()
        self.history_ttl = settings.decision_ttl_seconds
        self.linger = linger
        self.lost = lost
        self.background = background
        self.max_queued = max_queued
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._pending: deque[Record] = deque()
        self._wake = threading.Event()
        self._writing = False
        self._riding = 0
        """Opens under way whose reads carry records."""
        self.rides = background and not isinstance(services.redis_open, LazyCluster | RedisCluster)
        """Whether opens' reads carry waiting records (``ride_along``)."""

    def submit(self, record: Record) -> None:
        """Write ``record`` now (inline) or hand it to the background writer; never raises.

        Handing over is an append to a deque; the writer is woken only when it sleeps, so a
        busy writer costs the requests nothing but the append."""
        if not self.background:
            self.write([record])
            return
        self._ensure_writer()
        if len(self._pending) >= self.max_queued:
            self.lost([record], None)
            return
        self._pending.append(record)
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is written (or ``timeout`` passes); whether it was."""
        if not self.background or self._pid != current_pid():
            return True
        deadline = time.monotonic() + timeout
        while self._pending or self._writing or self._riding:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def write(self, records: Sequence[Record]) -> None:
        """Write ``records`` in one batch; report the ones lost instead of raising."""
        try:
            batch = Batch(self.services.redis_open, decode=False, guard=self.guard)
            ends = self._queue_all(batch, records)
            replies = batch.execute(raising=False)
        except Exception as exc:  # nothing may escape the writer
            self.lost(records, exc)
            return
        self._settle(records, ends, replies)

    def ride_along(self, batch: Batch) -> Callable[[Sequence[Any]], None] | None:
        """Add up to ``RIDE_ALONG`` waiting records to ``batch`` (an open's read), to be written
        in its round trip; returns what settles them from their replies. None when nothing
        waits, when recording inline, or on a Redis Cluster (the records' counters live on
        other nodes than the read: the background writer sends them)."""
        if not self.rides or not self._pending:
            return None
        taken = self._take(RIDE_ALONG)
        if not taken:
            return None
        with self._lock:
            self._riding += 1
        start = len(batch)
        try:
            ends = [end - start for end in self._queue_all(batch, taken)]
        except Exception as exc:
            self._arrived(taken, exc)
            return None

        def arrived(replies: Sequence[Any]) -> None:
            try:
                self._settle(taken, ends, replies)
            finally:
                self._arrived(taken, None)

        return arrived

    def _take(self, limit: int) -> list[Record]:
        """Up to ``limit`` waiting records, oldest first (opens' reads and the writer take them
        concurrently)."""
        taken: list[Record] = []
        while len(taken) < limit:
            try:
                taken.append(self._pending.popleft())
            except IndexError:  # nothing left, or another thread took the last ones
                break
        return taken

    def _arrived(self, records: Sequence[Record], error: Exception | None) -> None:
        with self._lock:
            self._riding -= 1
        if error is not None:
            self.lost(records, error)

    def _queue_all(self, batch: Batch, records: Sequence[Record]) -> list[int]:
        """Queue every record's commands; where each record's commands end in the batch."""
        ends = []
        for record in records:
            self._queue_commands(batch, record)
            ends.append(len(batch))
        return ends

    def _settle(self, records: Sequence[Record], ends: list[int], replies: Sequence[Any]) -> None:
        """Report the records one of whose writes failed. A Redis that has forgotten the
        marking script (restarted, or a replica promoted) refused only the marks: the script
        is loaded and those marks sent once more."""
        start = 0
        failed: list[Record] = []
        unmarked: list[Record] = []
        error: Exception | None = None
        for record, end in zip(records, ends, strict=True):
            errors = [r for r in replies[start:end] if isinstance(r, Exception)]
            if errors and all(isinstance(e, NoScriptError) for e in errors):
                unmarked.append(record)
            elif errors:
                failed.append(record)
                error = error or errors[0]
            start = end
        if unmarked:
            self._mark_again(unmarked)
        if failed:
            self.lost(failed, error)

    def _mark_again(self, records: Sequence[Record]) -> None:
        """Load the marking script and send the marks of ``records`` again (only the marks:
        their other writes went through)."""
        try:
            load_script(self.services.redis_open)
            batch = Batch(self.services.redis_open, decode=False, guard=self.guard)
            for record in records:
                self.services.stats.queue_marks(batch, counted_event(record))
            replies = batch.execute(raising=False)
        except Exception as exc:  # nothing may escape the writer
            self.lost(records, exc)
            return
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            self.lost(records, errors[0])

    def _ensure_writer(self) -> None:
        pid = current_pid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pending = deque()  # a forked child starts afresh
            self._wake = threading.Event()
            threading.Thread(target=self._run, name="blanco-recorder", daemon=True).start()
            self._pid = pid

    def _run(self) -> None:
        pending, wake = self._pending, self._wake
        while True:
            wake.wait()
            wake.clear()
            time.sleep(self.linger)  # let a batch gather: one wake-up and write for many
            while pending:
                self._writing = True
                batch = self._take(self.max_batch)
                try:
                    self.write(batch)
                finally:
                    self._writing = False

    def send_decision(self, recipient_id: str, decision: Decision) -> Sent | None:
        """Send the write of ``decision`` before answering, when recording runs in the
        background (so that a click right after the open, on any worker, follows it); its
        reply is read later (``Sent.replies``, where a Redis failure stands), so that its round
        trip overlaps the render. None when recording inline (the record stores it)."""
        if not self.background:
            return None
        batch = Batch(self.services.redis_open, decode=False, guard=self.guard)
        self._queue_decision(batch, recipient_id, decision)
        return batch.send()

    def _queue_decision(self, pipe: Batch, recipient_id: str, decision: Decision) -> None:
        ttl = self.services.settings.decision_ttl_seconds
        self.services.tombstones.queue_unless_erased(
            pipe, recipient_id, decision_store_commands(recipient_id, decision, ttl)
        )

    def _queue_commands(self, pipe: Batch, record: Record) -> None:
        shown = record.shown
        personal = self._touch_commands(record)
        if record.store_decision:
            ttl = self.services.settings.decision_ttl_seconds
            personal = decision_store_commands(record.recipient_id, shown, ttl) + personal
        if personal:  # one script: nothing of the recipient's is written once they are erased
            self.services.tombstones.queue_unless_erased(pipe, record.recipient_id, personal)
        pipe.xadd(
            keys.campaign_events(shown.campaign_id, shard_of(record.pseudonym)),
            {
                "type": record.event,
                "block": shown.block_id,
                "variant": variant_label(shown.variant_id),
                "version": shown.version,
                "recipient": record.pseudonym,
                "client": record.client,
                "kind": record.kind,
                "holdout": int(shown.holdout),
                "send": record.send or "",
                "at": record.at.isoformat(),
            },
            maxlen=self.trim.max_length,
            approximate=self.trim.approximate,
        )
        self.services.stats.queue(pipe, counted_event(record))

    def store_click_ref(self, record: Record) -> Record:
        """Write the click reference of ``record`` now, before its redirect answers, so that an
        order reported right after the click finds it (on any worker); the record, without
        it, goes on as usual. Inline recording writes it with the record. Never raises: a
        failure is reported as the record's loss, and the token then names no click."""
        ref = record.click_ref
        if ref is None or not self.background:
            return record
        try:
            batch = Batch(self.services.redis_open, decode=False, guard=self.guard)
            commands = ref_commands(ref, record.recipient_id, touch_of(record), self.click_ttl)
            self.services.tombstones.queue_unless_erased(batch, record.recipient_id, commands)
            errors = [r for r in batch.execute(raising=False) if isinstance(r, Exception)]
        except Exception as exc:  # nothing may escape the open path
            errors = [exc]
        if errors:
            self.lost([record], errors[0])
        return replace(record, click_ref=None)

    def _touch_commands(self, record: Record) -> list[Command]:
        """A person's click or open as the recipient's last touch, and a click's reference
        (what its attribution token names): ``models.conversions``."""
        if not is_touch(record.event, record.kind) and record.click_ref is None:
            return []  # a machine's open or a bot's click: nothing to keep
        shown = record.shown
        touch = touch_of(record)
        rid = record.recipient_id
        if record.event == "open" and not self.views.due(rid, touch):
            return []  # a re-open written moments ago
        commands = touch_commands(
            rid, record.event, record.kind, touch, self.click_ttl, self.view_ttl
        )
        if record.click_ref is not None:
            commands += ref_commands(record.click_ref, rid, touch, self.click_ttl)
        item = shown.variant_id if shown.block_id.startswith(SLOT_BLOCK_PREFIX) else None
        if record.event == "click" and item is not None:  # its fatigue starts again
            commands += item_click_commands(rid, item, record.at.timestamp(), self.history_ttl)
        return commands


def touch_of(record: Record) -> Touch:
    """The record as a touch a conversion may be credited to."""
    shown = record.shown
    return Touch(
        shown.campaign_id,
        shown.block_id,
        HOLDOUT_KIND if shown.holdout else variant_label(shown.variant_id),
        record.send,
        record.at,
        shown.holdout,
    )


def counted_event(record: Record) -> CountedEvent:
    """The record as the counters count it."""
    shown = record.shown
    return CountedEvent(
        campaign_id=shown.campaign_id,
        block_id=shown.block_id,
        variant=variant_label(shown.variant_id),
        recipient_id=record.pseudonym,
        event=record.event,
        client=record.client,
        kind=record.kind,
        at=record.at,
        holdout=shown.holdout,
        send=record.send,
        persona=record.persona,
    )
