"""Counting at the open's rate: counts and observations gathered in plain Python, handed to
``prometheus_client`` in bulk.

A ``prometheus_client`` count costs a lock, a process check and (with several gunicorn workers)
a write to a memory-mapped file, several times per open: a noticeable share of a cache-hit open.
A ``Tally`` takes each count and observation instead with one atomic step (``next()`` of an
``itertools.count``, a deque append: exact across threads without a lock) and ``flush()`` adds
them to the library's metrics in one step per labelled child. A thread per process flushes every
live tally each ``FLUSH_SECONDS``, a scrape flushes its own process first, and a gunicorn worker
flushes on its way out; a worker killed outright loses at most the last ``FLUSH_SECONDS`` of its
counts.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from typing import Any

from models.process_id import current_pid

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
"""How long a count may wait in a worker before its metric shows it (on any worker's scrape)."""


def observe_all(histogram: Any, values: Sequence[float]) -> None:
    """Add ``values`` to a labelled ``prometheus_client`` histogram, as ``observe`` would one by
    one: each in the first bucket whose bound is at least the value (the library's own layout,
    checked by the tests); one by one where the child does not have that layout."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    total.inc(sum(values))
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


class Tally:
    """Counts and observations since the last flush, by labelled child (a counter's or a
    histogram's). ``count`` and ``observe`` may run on any thread; ``flush`` on any one."""

    def __init__(self) -> None:
        self._counts: dict[Any, itertools.count[int]] = {}
        self._flushed: dict[Any, int] = {}
        self._observed: dict[Any, deque[float]] = {}
        self._lock = threading.Lock()
        _FLUSHER.watch(self)

    def count(self, child: Any) -> None:
        """One more for a counter child."""
        counter = self._counts.get(child)
        if counter is None:
            counter = self._counts.setdefault(child, itertools.count())
        next(counter)
        if _FLUSHER.pid != current_pid():
            _FLUSHER.start()

    def observe(self, child: Any, value: float) -> None:
        """One observation for a histogram child."""
        values = self._observed.get(child)
        if values is None:
            values = self._observed.setdefault(child, deque())
        values.append(value)
        if _FLUSHER.pid != current_pid():
            _FLUSHER.start()

    def flush(self) -> None:
        """Hand every count and observation so far to its child."""
        with self._lock:
            for child, counter in list(self._counts.items()):
                reached = next(counter)  # counts so far, plus one per earlier flush
                done = self._flushed.get(child, 0)
                self._flushed[child] = reached + 1
                if reached > done:
                    child.inc(reached - done)
            for child, queued in list(self._observed.items()):
                values = [queued.popleft() for _ in range(len(queued))]
                if values:
                    observe_all(child, values)


class _Flusher:
    """One daemon thread per process that flushes every live tally each ``FLUSH_SECONDS``;
    started by the first count (so never at import, and again in a forked child, which the
    parent's thread does not come along to)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        """The process whose thread runs (None: none yet)."""
        self._tallies: weakref.WeakSet[Tally] = weakref.WeakSet()
        self._lock = threading.Lock()

    def watch(self, tally: Tally) -> None:
        """Flush ``tally`` from now on (while it lives)."""
        self._tallies.add(tally)

    def start(self) -> None:
        """Start the thread in this process (once)."""
        pid = current_pid()
        with self._lock:
            if self.pid == pid:
                return
            self.pid = pid
            threading.Thread(target=self._run, name="blanco-metrics", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            for tally in list(self._tallies):
                try:
                    tally.flush()
                except Exception:  # a metric must never take the worker down
                    log.exception("could not flush metrics")


_FLUSHER = _Flusher()
