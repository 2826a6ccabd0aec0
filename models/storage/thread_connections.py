"""One pooled connection per thread and pool, kept between batches.

Taking a connection from redis-py's pool and giving it back costs a hot path more than packing
its commands (a lock, two pid checks, four observability calls and an event dispatch each way).
A thread that sends batches keeps the connection it took from each pool (a Redis, or a cluster
node) instead, and checks it before every use as the pool would (``ensure_connection``: connect
if it is not; reconnect if the server closed it or it holds unread data).

A connection stays in the pool's in-use set while a thread holds it, so that the pool still
owns it: ``disconnect()`` (the breakers' reset after a failure, a client's ``close()``) closes
it too, and the next use connects afresh. A connection that failed is closed and given back
(``forget``). When a thread ends, its connections go back to their pools; a forked child never
uses its parent's.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from models.process_id import current_pid


class _Held:
    """A connection taken from ``pool`` by one thread; given back when dropped (the thread
    ended, or the pool was collected)."""

    __slots__ = ("__weakref__", "connection", "given_back", "pid", "pool")

    def __init__(self, pool: Any, connection: Any) -> None:
        self.pool = weakref.ref(pool)
        self.connection = connection
        self.pid = current_pid()
        self.given_back = False

    def give_back(self) -> None:
        """Return the connection to its pool (once, and only in the process that took it)."""
        pool = self.pool()
        if pool is not None and not self.given_back and self.pid == current_pid():
            self.given_back = True
            pool.release(self.connection)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # a pool shut down at exit: nothing to give back
            self.give_back()


class _ThreadHeld(threading.local):
    def __init__(self) -> None:
        self.by_pool: weakref.WeakKeyDictionary[Any, _Held] = weakref.WeakKeyDictionary()


_held = _ThreadHeld()
_side = _ThreadHeld()
"""A second connection per thread and pool, for a batch whose replies are read later
(``Batch.send``): the thread's other batches meanwhile use the first."""


def connection_of(pool: Any, *, side: bool = False) -> Any:
    """This thread's connection from ``pool`` (its second one with ``side``), checked and
    connected (raises what connecting raises, after giving the connection back)."""
    lane = _side if side else _held
    held = lane.by_pool.get(pool)
    if held is None or held.pid != current_pid():
        connection = pool.get_connection()  # checked by the pool
        lane.by_pool[pool] = _Held(pool, connection)
        return connection
    connection = held.connection
    try:
        pool.ensure_connection(connection)
    except BaseException:
        forget(pool, connection)
        raise
    return connection


def forget(pool: Any, connection: Any) -> None:
    """Close a connection that failed (or whose replies were not all read) and give it back."""
    connection.disconnect()
    for lane in (_held, _side):
        held = lane.by_pool.get(pool)
        if held is not None and held.connection is connection:
            del lane.by_pool[pool]
            held.give_back()
            return
    pool.release(connection)
