"""Bulk writes at full speed: commands packed per chunk and sent over one pooled connection.

redis-py's ``Pipeline`` spends most of a bulk load's client CPU on per-command bookkeeping
(the command stack, response callbacks), which caps pipelined upserts at about 30,000 rows/s
on a 2-core machine. Bulk writes only need to know that no command failed, so here each chunk
is packed into one buffer (with hiredis), sent, and its replies are read and checked: an error
reply raises ``redis.ResponseError``. After any error the connection is closed rather than
returned to the pool with replies unread. As with a non-transactional pipeline, a failing
command undoes nothing: the other commands of its chunk are applied; later chunks are not sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

import hiredis
import redis

Command = tuple[str | bytes | int | float, ...]
_pack: Callable[[Command], bytes] = hiredis.pack_command  # type: ignore[assignment]  # stub: 1-tuple
CHUNK = 3000
"""Commands per round trip."""


def send_commands(client: redis.Redis, commands: Iterable[Command], chunk: int = CHUNK) -> int:
    """Run ``commands`` in order, ``chunk`` per round trip; return how many were sent."""
    pool = client.connection_pool
    connection = pool.get_connection()
    sent = 0
    iterator = iter(commands)
    try:
        while batch := list(islice(iterator, chunk)):
            connection.send_packed_command([b"".join([_pack(command) for command in batch])])
            for _ in batch:
                connection.read_response(disable_decoding=True)
            sent += len(batch)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    return sent


T = TypeVar("T")


def send_items(
    client: redis.Redis, items: Iterable[T], commands: Callable[[T], Iterator[Command]]
) -> int:
    """Send the commands of every item (see ``send_commands``); return how many items."""
    count = 0

    def all_commands() -> Iterator[Command]:
        nonlocal count
        for item in items:
            count += 1
            yield from commands(item)

    send_commands(client, all_commands())
    return count


class CommandBuffer:
    """Collects write commands through the few pipeline methods the recording code calls
    (``hset``, ``expire``, ``hincrby``, ``pfadd``, ``xadd``), for ``send_commands``: the same
    writes without redis-py's per-command pipeline bookkeeping."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def hset(self, name: str, key: str, value: str) -> None:
        """Queue HSET."""
        self.commands.append(("HSET", name, key, value))

    def expire(self, name: str, seconds: int) -> None:
        """Queue EXPIRE."""
        self.commands.append(("EXPIRE", name, seconds))

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        """Queue HINCRBY."""
        self.commands.append(("HINCRBY", name, key, amount))

    def pfadd(self, name: str, *values: str) -> None:
        """Queue PFADD."""
        self.commands.append(("PFADD", name, *values))

    def xadd(
        self,
        name: str,
        fields: dict[str, str | int],
        maxlen: int | None = None,
        approximate: bool = True,
    ) -> None:
        """Queue XADD with an auto id, trimmed to about ``maxlen`` entries."""
        trim: tuple[str | int, ...] = ()
        if maxlen is not None:
            trim = ("MAXLEN", "~", maxlen) if approximate else ("MAXLEN", maxlen)
        flat = [part for pair in fields.items() for part in pair]
        self.commands.append(("XADD", name, *trim, "*", *flat))


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


class PackedPipeline:
    """A pipeline for hot paths (the open's read, the audience export): the commands packed
    into one buffer with hiredis, sent in one round trip, and their replies shaped as
    redis-py's pipeline shapes them (a dict for HGETALL, a set for SMEMBERS, (member, score)
    pairs for ``withscores``), without its per-command bookkeeping. It offers only the commands
    those paths use. An error reply raises it (``read_response`` does; the connection, with
    replies left unread, is then closed)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._commands: list[Command] = []
        self._shapes: list[Callable[[Any], Any]] = []

    def _add(self, command: Command, shape: Callable[[Any], Any] = _same) -> None:
        self._commands.append(command)
        self._shapes.append(shape)

    def get(self, name: str) -> None:
        """Queue GET."""
        self._add(("GET", name))

    def hget(self, name: str, key: str) -> None:
        """Queue HGET."""
        self._add(("HGET", name, key))

    def exists(self, name: str) -> None:
        """Queue EXISTS (a count)."""
        self._add(("EXISTS", name))

    def hlen(self, name: str) -> None:
        """Queue HLEN."""
        self._add(("HLEN", name))

    def hgetall(self, name: str) -> None:
        """Queue HGETALL (a dict)."""
        self._add(("HGETALL", name), _pairs)

    def smembers(self, name: str) -> None:
        """Queue SMEMBERS (a set)."""
        self._add(("SMEMBERS", name), set)

    def sadd(self, name: str, *values: str) -> None:
        """Queue SADD (how many were new)."""
        self._add(("SADD", name, *values))

    def expire(self, name: str, seconds: int) -> None:
        """Queue EXPIRE."""
        self._add(("EXPIRE", name, seconds))

    def smismember(self, name: str, values: list[str]) -> None:
        """Queue SMISMEMBER (a list of 0/1)."""
        self._add(("SMISMEMBER", name, *values))

    def zrevrangebyscore(
        self,
        name: str,
        max: str | float,
        min: str | float,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
    ) -> None:
        """Queue ZREVRANGEBYSCORE (with ``withscores``, (member, score) pairs)."""
        command: list[str | int | float] = ["ZREVRANGEBYSCORE", name, max, min]
        if withscores:
            command.append("WITHSCORES")
        if start is not None and num is not None:
            command += ["LIMIT", start, num]
        self._add(tuple(command), _scored if withscores else _same)

    def execute(self) -> list[Any]:
        """Send every queued command in one round trip; their shaped replies, in order."""
        if not self._commands:
            return []
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command([b"".join([_pack(c) for c in self._commands])])
            replies = [connection.read_response() for _ in self._commands]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return [shape(reply) for shape, reply in zip(self._shapes, replies, strict=True)]
