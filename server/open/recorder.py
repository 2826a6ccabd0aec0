"""Recording opens, clicks and views: the decision, the stream event and the counters, written in
one batch, either inline or by a background thread per worker that batches them.

In the background (the default), an open costs the request only the building of a small
record: a thread writes every record waiting at that moment in one pipeline, so the second
Redis round-trip leaves the request path and is shared by many requests. On a Redis Cluster the
batch goes to every node it touches at once (the recipient's node for the decision, the shard
nodes for the counters). The queue is bounded; a record that does not fit, or one of whose
writes fails, is counted as lost (``blanco_events_lost``), never raised; the records of a batch
whose writes all went through are not. Workers flush what is queued when they exit (a gunicorn
hook). Inline recording (``BLANCO_RECORD_IN_BACKGROUND=false``) writes before the response,
which tests use to read Redis right after a request.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.decision import Decision, decision_store_commands
from models.measurement.event_stream import shard_trim
from models.measurement.stats import CountedEvent, shard_of, variant_label
from models.storage import keys
from models.storage.batch import Batch, NodeGuard
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
        self.trim = shard_trim(services.settings.event_stream_max_length)
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
        if not self.background or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        while self._pending or self._writing:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def write(self, records: Sequence[Record]) -> None:
        """Write ``records`` in one batch; report the ones lost instead of raising."""
        try:
            batch = Batch(self.services.redis_open, decode=False, guard=self.guard)
            ends = []
            for record in records:
                self._queue_commands(batch, record)
                ends.append(len(batch))
            replies = batch.execute(raising=False)
        except Exception as exc:  # nothing may escape the writer
            self.lost(records, exc)
            return
        start = 0
        failed: list[Record] = []
        error: Exception | None = None
        for record, end in zip(records, ends, strict=True):
            errors = [r for r in replies[start:end] if isinstance(r, Exception)]
            if errors:
                failed.append(record)
                error = error or errors[0]
            start = end
        if failed:
            self.lost(failed, error)

    def _ensure_writer(self) -> None:
        pid = os.getpid()
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
                batch = [pending.popleft() for _ in range(min(len(pending), self.max_batch))]
                try:
                    self.write(batch)
                finally:
                    self._writing = False

    def _queue_commands(self, pipe: Batch, record: Record) -> None:
        shown = record.shown
        settings = self.services.settings
        if record.store_decision:
            self.services.tombstones.queue_unless_erased(
                pipe,
                record.recipient_id,
                decision_store_commands(record.recipient_id, shown, settings.decision_ttl_seconds),
            )
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
        self.services.stats.queue(
            pipe,
            CountedEvent(
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
            ),
        )
