"""Batches of Redis commands packed with hiredis and routed by node.

redis-py's ``Pipeline`` spends most of a hot path's client CPU on per-command bookkeeping, and
on a Redis Cluster a pipeline must be split by node anyway. A ``Batch`` packs its commands into
one buffer per node, sends every node's buffer before reading any reply, and returns the replies
in the order the commands were added, shaped as redis-py shapes them (a dict for HGETALL, a set
for SMEMBERS, (member, score) pairs for ``withscores``).

On a single Redis (or a Sentinel-managed primary) that is one buffer and one round trip, as
before. On a Redis Cluster, commands are grouped by the node that owns each key's slot (the key
is the command's first argument unless stated). A ``MOVED`` reply updates the client's slot map
and the command goes to the new owner; an ``ASK`` reply sends it to the importing node after
``ASKING``; up to ``MAX_REDIRECTS`` redirects in a row are followed. Nothing here is atomic
across nodes: commands to different nodes may be applied while another node fails, as with any
non-transactional pipeline.

Error replies are read like any other (so the connection stays clean for the pool); after the
whole batch, the first failure is raised (or, on request, returned in place of its reply). A
node that cannot be reached gives ``NodeFailure``, which names the node and is a
``redis.ConnectionError``. An optional guard (the open path's per-node circuit breakers) is asked
before each node is used and told how it went.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol, TypeVar

import hiredis
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, MovedError

from models.storage.breakers import CircuitOpen
from models.storage.clients import LazyCluster, cluster_of
from models.storage.thread_connections import connection_of, forget

Command = tuple[str | bytes | int | float, ...]
Shape = Callable[[Any], Any]
_pack: Callable[[Command], bytes] = hiredis.pack_command  # type: ignore[assignment]  # stub: 1-tuple
CHUNK = 3000
"""Commands per round trip in ``send_commands``."""
_SCRIPTS = ("EVAL", "EVALSHA")
"""Commands whose first key is their fourth argument (after the script and the key count)."""
SINGLE_NODE = "redis"
DISCOVERY = "cluster discovery"
"""The breaker name of discovering a cluster (before any node is known)."""
MAX_REDIRECTS = 3
"""MOVED and ASK replies followed in a row (a slot moved, then half-moved again) before a
command counts as failed."""
"""The node name of a single Redis (or of the primary behind Sentinel)."""
REDIS_FAILURES: tuple[type[BaseException], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)
"""What a Redis call can raise when Redis is away, slow or being resharded."""
UNAVAILABLE: tuple[type[BaseException], ...] = (*REDIS_FAILURES, CircuitOpen)
"""A Redis failure, or a node skipped by its circuit breaker: the caller answers without it."""


class NodeFailure(redis.ConnectionError):  # type: ignore[misc]  # redis-py is untyped here
    """A node could not be reached or did not answer in time."""

    def __init__(self, node: str, cause: BaseException) -> None:
        said = str(cause) or type(cause).__name__
        super().__init__(said if node == SINGLE_NODE else f"node {node}: {said}")
        self.node = node
        self.cause = cause


class NodeGuard(Protocol):
    """Decides whether a node may be used now, and hears how each use went."""

    def check(self, node: str) -> None:
        """Raise CircuitOpen to skip ``node``."""

    def succeeded(self, node: str) -> None:
        """``node`` answered."""

    def failed(self, node: str, error: BaseException | None = None) -> None:
        """``node`` failed."""

    def usable(self, node: str) -> bool:
        """Whether ``node`` answered last time it was used (or was never used)."""


def _pairs(reply: list[Any] | dict[Any, Any]) -> dict[Any, Any]:
    if isinstance(reply, dict):  # RESP3 answers a map
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _scored(reply: list[Any]) -> list[tuple[Any, float]]:
    if reply and isinstance(reply[0], list):  # RESP3 answers [member, score] pairs
        return [(member, float(score)) for member, score in reply]
    return [(member, float(score)) for member, score in zip(reply[::2], reply[1::2], strict=True)]


def _same(reply: Any) -> Any:
    return reply


@dataclass
class _Route:
    """The commands (by position) going to one node, and that node's connection."""

    name: str
    client: redis.Redis
    positions: list[int] = field(default_factory=list)
    asking: bool = False


def node_name(client: Any, key: str | bytes) -> str:
    """The name of the node that holds ``key`` (``SINGLE_NODE`` on a single Redis)."""
    cluster = cluster_of(client)
    if cluster is None:
        return SINGLE_NODE
    node: ClusterNode = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
    return str(node.name)


class Batch:
    """Queued commands, sent per node in one round trip each, replies shaped and in order."""

    def __init__(self, client: Any, *, decode: bool = True, guard: NodeGuard | None = None) -> None:
        self.client = client
        self.guard = guard
        """Asked before each node is used and told how it went (the open path's breakers)."""
        self.decode = decode
        """False reads replies as bytes (bulk writes only check for errors: a little faster)."""
        self._commands: list[Command] = []
        self._shaped: list[tuple[int, Shape]] = []
        """The replies to shape (by position), and how: most are taken as they come."""
        self._keys: list[str | bytes] = []

    def __len__(self) -> int:
        return len(self._commands)

    def add(
        self, *command: str | bytes | int | float, shape: Shape = _same, key: Any = None
    ) -> int:
        """Queue ``command`` (routed by ``key``, else its first argument); its position."""
        if shape is not _same:
            self._shaped.append((len(self._commands), shape))
        self._commands.append(command)
        if key is None:
            key = command[3] if command[0] in _SCRIPTS else command[1]
        self._keys.append(key)
        return len(self._commands) - 1

    # the commands the hot paths use, named as redis-py names them

    def get(self, name: str) -> int:
        """Queue GET."""
        return self.add("GET", name)

    def exists(self, name: str) -> int:
        """Queue EXISTS (a count)."""
        return self.add("EXISTS", name)

    def hget(self, name: str, key: str) -> int:
        """Queue HGET."""
        return self.add("HGET", name, key)

    def hlen(self, name: str) -> int:
        """Queue HLEN."""
        return self.add("HLEN", name)

    def hgetall(self, name: str) -> int:
        """Queue HGETALL (a dict)."""
        return self.add("HGETALL", name, shape=_pairs)

    def hset(self, name: str, key: str, value: str) -> int:
        """Queue HSET of one field."""
        return self.add("HSET", name, key, value)

    def hsetnx(self, name: str, key: str, value: str) -> int:
        """Queue HSETNX."""
        return self.add("HSETNX", name, key, value)

    def hincrby(self, name: str, key: str, amount: int = 1) -> int:
        """Queue HINCRBY."""
        return self.add("HINCRBY", name, key, amount)

    def expire(self, name: str, seconds: int) -> int:
        """Queue EXPIRE."""
        return self.add("EXPIRE", name, seconds)

    def smembers(self, name: str) -> int:
        """Queue SMEMBERS (a set)."""
        return self.add("SMEMBERS", name, shape=set)

    def sadd(self, name: str, *values: str) -> int:
        """Queue SADD (how many were new)."""
        return self.add("SADD", name, *values)

    def smismember(self, name: str, values: list[str]) -> int:
        """Queue SMISMEMBER (a list of 0/1)."""
        return self.add("SMISMEMBER", name, *values)

    def pfadd(self, name: str, *values: str) -> int:
        """Queue PFADD."""
        return self.add("PFADD", name, *values)

    def xadd(
        self,
        name: str,
        fields: dict[str, str | int],
        maxlen: int | None = None,
        approximate: bool = True,
    ) -> int:
        """Queue XADD with an auto id, trimmed to about ``maxlen`` entries."""
        trim: tuple[str | int, ...] = ()
        if maxlen is not None:
            trim = ("MAXLEN", "~", maxlen) if approximate else ("MAXLEN", maxlen)
        flat = [part for pair in fields.items() for part in pair]
        return self.add("XADD", name, *trim, "*", *flat)

    def zrevrangebyscore(
        self,
        name: str,
        max: str | float,
        min: str | float,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
    ) -> int:
        """Queue ZREVRANGEBYSCORE (with ``withscores``, (member, score) pairs)."""
        command: list[str | int | float] = ["ZREVRANGEBYSCORE", name, max, min]
        if withscores:
            command.append("WITHSCORES")
        if start is not None and num is not None:
            command += ["LIMIT", start, num]
        return self.add(*command, shape=_scored if withscores else _same)

    def zrangebyscore(
        self, name: str, min: str | float, max: str | float, withscores: bool = False
    ) -> int:
        """Queue ZRANGEBYSCORE (with ``withscores``, (member, score) pairs)."""
        command: list[str | float] = ["ZRANGEBYSCORE", name, min, max]
        if withscores:
            command.append("WITHSCORES")
        return self.add(*command, shape=_scored if withscores else _same)

    def zadd(self, name: str, mapping: dict[str, float]) -> int:
        """Queue ZADD."""
        flat = [part for member, score in mapping.items() for part in (score, member)]
        return self.add("ZADD", name, *flat)

    def zremrangebyscore(self, name: str, min: str | float, max: str | float) -> int:
        """Queue ZREMRANGEBYSCORE."""
        return self.add("ZREMRANGEBYSCORE", name, min, max)

    # sending

    def execute(self, *, raising: bool = True) -> list[Any]:
        """Send every queued command (one round trip per node); their shaped replies, in
        order. With ``raising`` (the default), the first failure is raised: an error reply,
        NodeFailure for a node that did not answer, CircuitOpen for a node its guard skips.
        Without, failures stand in the list in place of their replies."""
        if not self._commands:
            return []
        cluster = self._cluster()
        if cluster is None:
            route = _Route(SINGLE_NODE, self.client, list(range(len(self._commands))))
            replies: list[Any] = [None] * len(self._commands)
            self._exchange([route], replies)
        else:
            replies = self._execute_on(cluster)
        return self._shape(replies, raising)

    def _shape(self, replies: list[Any], raising: bool) -> list[Any]:
        """``replies`` shaped as the commands asked (the first failure raised, if
        ``raising``)."""
        if raising:
            _raise_failure(replies)
        for position, shape in self._shaped:
            reply = replies[position]
            if not isinstance(reply, BaseException):
                replies[position] = shape(reply)
        return replies

    def send(self) -> Sent:
        """Send every queued command now and read the replies later (``Sent.replies``), so
        that the round trip overlaps other work: on a single Redis (or a Sentinel-managed
        one), on the thread's second connection, which the thread's other batches leave
        alone meanwhile. On a Redis Cluster the batch is executed at once. A node that cannot
        be used stands in the replies as ``execute`` reports it."""
        cluster = self._cluster()
        if cluster is not None or not self._commands:
            return Sent(self, self.execute(raising=False))
        replies: list[Any] = [None] * len(self._commands)
        route = _Route(SINGLE_NODE, self.client, list(range(len(self._commands))))
        return Sent(self, replies, unread=self._post([route], replies, side=True))

    def _cluster(self) -> RedisCluster | None:
        """The cluster behind the client (None for a single Redis). Discovering it the first
        time is I/O too: with a guard, that is asked and told under ``DISCOVERY``."""
        guard = self.guard
        if guard is None or not isinstance(self.client, LazyCluster) or self.client.built:
            return cluster_of(self.client)
        guard.check(DISCOVERY)
        try:
            found = self.client.discover(avoid=lambda node: not guard.usable(node))
        except REDIS_FAILURES as exc:
            guard.failed(DISCOVERY, exc)
            raise NodeFailure(DISCOVERY, exc) from exc
        guard.succeeded(DISCOVERY)
        return found

    def _execute_on(self, cluster: RedisCluster) -> list[Any]:
        replies: list[Any] = [None] * len(self._commands)
        routes = self._routes(cluster, range(len(self._commands)))
        self._exchange(routes, replies)
        for _ in range(MAX_REDIRECTS):
            redirected = [i for i, reply in enumerate(replies) if isinstance(reply, AskError)]
            if not redirected:
                break
            self._exchange(self._redirects(cluster, redirected, replies), replies)
        return replies

    def _routes(self, cluster: RedisCluster, positions: Iterable[int]) -> list[_Route]:
        routes: dict[str, _Route] = {}
        manager = cluster.nodes_manager
        for position in positions:
            node = manager.get_node_from_slot(cluster.keyslot(self._keys[position]))
            route = routes.get(node.name)
            if route is None:
                route = routes[node.name] = _Route(node.name, cluster.get_redis_connection(node))
            route.positions.append(position)
        return list(routes.values())

    def _redirects(
        self, cluster: RedisCluster, positions: list[int], replies: list[Any]
    ) -> list[_Route]:
        """Routes for the commands that were redirected: MOVED updates the slot map and goes to
        the new owner; ASK goes to the importing node, after ASKING."""
        moved = []
        asking: dict[str, _Route] = {}
        for position in positions:
            error: AskError = replies[position]
            if isinstance(error, MovedError):
                cluster.nodes_manager.move_slot(error)
                moved.append(position)
                continue
            node = cluster.get_node(host=error.host, port=error.port)
            if node is None:
                node = ClusterNode(error.host, error.port)
                cluster.nodes_manager.create_redis_connections([node])
            route = asking.get(node.name)
            if route is None:
                client = cluster.get_redis_connection(node)
                route = asking[node.name] = _Route(node.name, client, asking=True)
            route.positions.append(position)
        return self._routes(cluster, moved) + list(asking.values())

    def _exchange(self, routes: list[_Route], replies: list[Any]) -> None:
        """Send each route's commands, then read every reply into ``replies``; a route whose
        node fails (or is skipped by the guard) gets the failure as each of its replies."""
        self._collect(self._post(routes, replies), replies)

    def _post(
        self, routes: list[_Route], replies: list[Any], *, side: bool = False
    ) -> list[tuple[_Route, Any]]:
        """Send each route's commands (on the thread's ``side`` connection, if asked); the
        routes sent and their connections. A route that could not be sent gets its failure
        as each of its replies."""
        guard = self.guard
        sent: list[tuple[_Route, Any]] = []
        for route in routes:
            try:
                if guard is not None:
                    guard.check(route.name)
                connection = connection_of(route.client.connection_pool, side=side)
            except UNAVAILABLE as exc:
                self._fail(route, replies, exc)
                continue
            try:
                _send(connection, self._pack(route))
            except REDIS_FAILURES as exc:
                self._drop(route, connection)
                self._fail(route, replies, exc)
                continue
            except BaseException:
                self._drop(route, connection)
                raise
            sent.append((route, connection))
        return sent

    def _collect(self, sent: list[tuple[_Route, Any]], replies: list[Any]) -> None:
        """Read the replies of the routes ``_post`` sent into ``replies``."""
        guard = self.guard
        for index, (route, connection) in enumerate(sent):
            try:
                self._read(route, connection, replies)
            except REDIS_FAILURES as exc:
                self._drop(route, connection)
                self._fail(route, replies, exc)
                continue
            except BaseException:
                for other, unread in sent[index:]:
                    self._drop(other, unread)
                raise
            if guard is not None:
                guard.succeeded(route.name)

    def _fail(self, route: _Route, replies: list[Any], error: BaseException) -> None:
        failure = error if isinstance(error, CircuitOpen) else NodeFailure(route.name, error)
        if self.guard is not None and not isinstance(error, CircuitOpen):
            self.guard.failed(route.name, error)
        for position in route.positions:
            replies[position] = failure

    @staticmethod
    def _drop(route: _Route, connection: Any) -> None:
        """Close a connection whose replies were not all read, and give it back."""
        forget(route.client.connection_pool, connection)

    def _pack(self, route: _Route) -> bytes:
        if route.asking:
            return b"".join(_pack(("ASKING",)) + _pack(self._commands[p]) for p in route.positions)
        return b"".join([_pack(self._commands[p]) for p in route.positions])

    def _read(self, route: _Route, connection: Any, replies: list[Any]) -> None:
        wire = _wire(connection)
        if wire is not None:  # every reply at once, straight from the socket
            count = len(route.positions) * (2 if route.asking else 1)
            read = wire.read(count)
            if route.asking:
                read = read[1::2]  # the +OK to each ASKING left out
            for position, reply in zip(route.positions, read, strict=True):
                replies[position] = reply
            return
        for position in route.positions:
            if route.asking:
                _reply(connection, self.decode)  # +OK to ASKING
            replies[position] = _reply(connection, self.decode)


def _raise_failure(replies: list[Any]) -> None:
    """Raise the first failure among ``replies``, if any."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply


class Sent:
    """A batch sent by ``Batch.send``, its replies not read yet (``unread``: the routes sent
    and their connections; without, ``replies`` are read and shaped already)."""

    def __init__(
        self,
        batch: Batch,
        replies: list[Any],
        *,
        unread: list[tuple[_Route, Any]] | None = None,
    ) -> None:
        self._batch = batch
        self._replies = replies
        self._unread = unread

    def replies(self, *, raising: bool = True) -> list[Any]:
        """The replies, read now if they were not (once; later calls answer the same),
        shaped as ``Batch.execute`` shapes them."""
        if self._unread is not None:
            self._batch._collect(self._unread, self._replies)
            self._unread = None
            self._batch._shape(self._replies, raising=False)
        if raising:
            _raise_failure(self._replies)
        return self._replies


class _Wire:
    """A connected redis-py connection's socket and hiredis reader, read directly: a batch's
    replies without redis-py's per-reply bookkeeping (about a third of an open's Redis cost).
    Error replies come back as exception objects, as redis-py's parser makes them."""

    def __init__(self, sock: Any, reader: Any) -> None:
        self.sock = sock
        self.reader = reader

    def read(self, count: int) -> list[Any]:
        """``count`` replies."""
        replies: list[Any] = []
        buffer = _buffer()
        gets, feed, recv = self.reader.gets, self.reader.feed, self.sock.recv_into
        while len(replies) < count:
            reply = gets()
            if reply is _NOT_ENOUGH_DATA or reply is False:
                received = recv(buffer)
                if not received:
                    raise redis.ConnectionError("Redis closed the connection")
                feed(buffer, 0, received)
                continue
            replies.append(reply)
        return replies


_READ_SIZE = 65536
_NOT_ENOUGH_DATA: object = getattr(
    importlib.import_module("redis._parsers.hiredis"), "NOT_ENOUGH_DATA", False
)
"""What redis-py's hiredis reader answers while a reply is incomplete (its own sentinel)."""
_buffers = threading.local()


def _buffer() -> bytearray:
    """This thread's receive buffer (the reader copies what it is fed)."""
    found: bytearray | None = getattr(_buffers, "buffer", None)
    if found is None:
        found = _buffers.buffer = bytearray(_READ_SIZE)
    return found


def _wire(connection: Any) -> _Wire | None:
    """Direct access to a connection's socket and hiredis reader, when redis-py gives it (else
    None: the replies are read through redis-py, one by one)."""
    sock = getattr(connection, "_sock", None)
    reader = getattr(getattr(connection, "_parser", None), "_reader", None)
    if sock is None or reader is None or not hasattr(reader, "gets"):
        return None
    return _Wire(sock, reader)


def _send(connection: Any, packed: bytes) -> None:
    """Send a packed batch on a pooled connection (connecting it if it is not)."""
    sock = getattr(connection, "_sock", None)
    if sock is None:
        connection.send_packed_command([packed])
        return
    try:
        sock.sendall(packed)
    except OSError as exc:
        connection.disconnect()
        raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc


def _reply(connection: Any, decode: bool) -> Any:
    """One reply; an error reply is returned, not raised (the others must still be read)."""
    try:
        if decode:
            return connection.read_response()
        return connection.read_response(disable_decoding=True)
    except redis.ResponseError as error:
        return error


def send_commands(client: Any, commands: Iterable[Command], chunk: int = CHUNK) -> int:
    """Run write ``commands`` in order, ``chunk`` per round trip (per node); return how many
    were sent. Raises the first error reply of a chunk after the chunk; later chunks are not
    sent (commands before it, and the rest of its chunk, are applied)."""
    sent = 0
    iterator = iter(commands)
    while batch_commands := list(islice(iterator, chunk)):
        batch = Batch(client, decode=False)
        for command in batch_commands:
            batch.add(*command)
        batch.execute()
        sent += len(batch_commands)
    return sent


T = TypeVar("T")


def send_items(client: Any, items: Iterable[T], commands: Callable[[T], Iterator[Command]]) -> int:
    """Send the commands of every item (see ``send_commands``); return how many items."""
    count = 0

    def all_commands() -> Iterator[Command]:
        nonlocal count
        for item in items:
            count += 1
            yield from commands(item)

    send_commands(client, all_commands())
    return count
