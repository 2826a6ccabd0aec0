"""Circuit breakers for Redis on the open-time path, one per node.

After a node fails, open-time requests skip that node for ``retry_after`` seconds and answer
fallbacks at once, so that they do not queue on timeouts. When the window is over, one request
goes through as a probe (half-open); its success closes the breaker, its failure opens a new
window. A skipped request raises ``CircuitOpen``, which is not a Redis failure: it never
extends the window, so the breaker closes under steady traffic too. On a Redis Cluster each
node has its own breaker, so one slow node does not turn recipients on healthy nodes to
fallbacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class CircuitOpen(Exception):
    """Redis is skipped after a recent failure (not itself a Redis failure)."""


class RedisBreaker:
    """Closed, open for a window after a failure, then half-open: one probe at a time."""

    def __init__(
        self,
        retry_after: float,
        name: str = "redis",
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.name = name
        self.on_open = on_open
        """Called when a window opens, e.g. to drop pooled connections that may be broken, so
        that the probe after the window does not fail on a stale one."""
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = False
        self._open_until = 0.0
        self._probe_until = 0.0

    @property
    def closed(self) -> bool:
        """Whether Redis is in use (no failure since the last success)."""
        return not self._failed

    def allow(self) -> bool:
        """Whether this request may use Redis: always while closed; after a failure, only one
        probe once the window is over (another after ``retry_after`` if it never reports)."""
        if not self._failed:
            return True
        now = self._clock()
        with self._lock:
            if now < self._open_until or now < self._probe_until:
                return False
            self._probe_until = now + self.retry_after
            return True

    def check(self) -> None:
        """Raise CircuitOpen unless this request may use Redis (see ``allow``)."""
        if not self.allow():
            raise CircuitOpen(f"{self.name}: skipped after a recent failure")

    def succeeded(self) -> None:
        """A call went through: close the breaker."""
        if not self._failed:
            return
        with self._lock:
            if self._failed:
                self._failed = False
                self._probe_until = 0.0
                log.warning("%s answers again; personal content is back", self.name)

    def failed(self, error: BaseException | None = None) -> None:
        """A call failed: skip Redis for a window (logged once per window)."""
        now = self._clock()
        with self._lock:
            if self._failed and now < self._open_until:
                return  # a request that was in flight when the window opened
            self._failed = True
            self._open_until = now + self.retry_after
            self._probe_until = 0.0
        if self.on_open is not None:
            try:
                self.on_open()
            except Exception:  # dropping connections is best effort
                log.debug("could not reset connections after a failure", exc_info=True)
        why = type(error).__name__ if error is not None else "failure"
        log.warning(
            "%s unavailable (%s); serving fallbacks for %.1f s before the next try",
            self.name,
            why,
            self.retry_after,
        )


class Breakers:
    """One breaker per Redis node, made on first use (the ``NodeGuard`` of open-time batches).
    ``on_open(node)`` runs when a node's window opens (e.g. to drop its pooled connections)."""

    def __init__(
        self,
        retry_after: float,
        on_open: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_after = retry_after
        self.on_open = on_open
        self._clock = clock
        self._breakers: dict[str, RedisBreaker] = {}
        self._lock = threading.Lock()

    def of(self, node: str) -> RedisBreaker:
        """The breaker of ``node``."""
        breaker = self._breakers.get(node)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(node)
                if breaker is None:
                    on_open = self.on_open
                    breaker = RedisBreaker(
                        self.retry_after,
                        name=f"redis {node}",
                        clock=self._clock,
                        on_open=(lambda: on_open(node)) if on_open else None,
                    )
                    self._breakers[node] = breaker
        return breaker

    @property
    def all_closed(self) -> bool:
        """Whether every node is in use."""
        return all(b.closed for b in list(self._breakers.values()))

    def check(self, node: str) -> None:
        """Raise CircuitOpen unless a request may use ``node`` now."""
        self.of(node).check()

    def succeeded(self, node: str) -> None:
        """A call to ``node`` went through."""
        self.of(node).succeeded()

    def failed(self, node: str, error: BaseException | None = None) -> None:
        """A call to ``node`` failed."""
        self.of(node).failed(error)

    def usable(self, node: str) -> bool:
        """Whether ``node`` answered the last time it was used (or was never used)."""
        breaker = self._breakers.get(node)
        return breaker is None or breaker.closed
