"""Values read from Redis and held for a while by each worker, read again in the background.

The first ask of a key reads its value (a failure raises); after ``seconds`` the held value
is still answered while one background thread reads it again, so a request never waits for a
slow read twice. A background read that fails leaves the held value, and the next ask tries
again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class HeldValues(Generic[K, V]):
    """``read(key)``, held per key for ``seconds`` (see the module docstring)."""

    def __init__(self, read: Callable[[K], V], seconds: float) -> None:
        self.read = read
        self.seconds = seconds
        self._held: dict[K, tuple[float, V]] = {}
        self._refreshing: set[K] = set()
        self._lock = threading.Lock()

    def __call__(self, key: K) -> V:
        held = self._held.get(key)
        if held is None:
            return self._read(key)
        if time.monotonic() - held[0] >= self.seconds:
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:
                threading.Thread(target=self._refresh, args=(key,), daemon=True).start()
        return held[1]

    def _read(self, key: K) -> V:
        value = self.read(key)
        self._held[key] = (time.monotonic(), value)
        return value

    def _refresh(self, key: K) -> None:
        try:
            self._read(key)
        except Exception:  # the held value stays; the next ask tries again
            log.exception("reading a held value again failed")
        finally:
            with self._lock:
                self._refreshing.discard(key)
