"""Batches: order, chunking, error replies, replies shaped as redis-py shapes them, and a clean
connection afterwards."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from models.storage.batch import Batch, Command, send_commands
from tests.factories import raw_client


def test_commands_run_in_order_across_chunks(redis_client: redis.Redis) -> None:
    commands: list[Command] = [("RPUSH", "list", n) for n in range(25)]
    commands.append(("EXPIRE", "list", 60))
    assert send_commands(redis_client, commands, chunk=7) == 26
    assert redis_client.lrange("list", 0, -1) == [str(n) for n in range(25)]
    assert 0 < redis_client.ttl("list") <= 60


def test_values_of_every_type_are_sent_as_given(redis_url: str, redis_client: redis.Redis) -> None:
    send_commands(redis_client, [("HSET", "h", "s", "é", "b", b"\x00\xff", "i", 7, "f", 0.25)])
    raw = raw_client(redis_url)
    try:
        assert raw.hgetall("h") == {
            b"s": "é".encode(),
            b"b": b"\x00\xff",
            b"i": b"7",
            b"f": b"0.25",
        }
    finally:
        raw.close()


def test_an_error_reply_raises_and_leaves_a_clean_connection(redis_client: redis.Redis) -> None:
    redis_client.set("text", "x")
    commands: list[Command] = [
        ("SET", "a", 1),
        ("HSET", "text", "f", "v"),  # WRONGTYPE: the first chunk fails on its last reply
        ("SET", "b", 2),
        ("SET", "c", 3),
    ]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        send_commands(redis_client, commands, chunk=2)
    assert redis_client.get("a") == "1"  # before the failure, in its chunk: applied
    assert redis_client.get("b") is None  # the next chunks are never sent
    assert redis_client.get("c") is None
    assert redis_client.ping() is True
    assert [redis_client.incr("counter") for _ in range(3)] == [1, 2, 3]


def test_nothing_to_send(redis_client: redis.Redis) -> None:
    assert send_commands(redis_client, []) == 0
    assert redis_client.dbsize() == 0


def test_packed_reads_answer_exactly_what_a_redis_py_pipeline_answers(
    redis_client: redis.Redis,
) -> None:
    redis_client.set("s", "x")
    redis_client.hset("h", mapping={"a": "1", "b": "2"})
    redis_client.sadd("set", "p", "q")
    redis_client.zadd("z", {"one": 1.5, "two": 2, "three": 3})

    def queue(pipe: Any) -> None:
        pipe.get("s")
        pipe.get("missing")
        pipe.hget("h", "a")
        pipe.hgetall("h")
        pipe.hgetall("missing")
        pipe.hlen("h")
        pipe.exists("set")
        pipe.smembers("set")
        pipe.smismember("set", ["p", "r"])
        pipe.zrevrangebyscore("z", "+inf", 1.6, start=0, num=10, withscores=True)
        pipe.zrevrangebyscore("z", "+inf", "-inf")

    packed = Batch(redis_client)
    queue(packed)
    reference = redis_client.pipeline(transaction=False)
    queue(reference)
    assert packed.execute() == reference.execute()


def test_packed_reads_raise_an_error_reply(redis_client: redis.Redis) -> None:
    redis_client.set("s", "x")
    packed = Batch(redis_client)
    packed.hgetall("s")  # WRONGTYPE
    with pytest.raises(redis.ResponseError):
        packed.execute()
    assert redis_client.get("s") == "x"  # the pooled connection is still usable


def test_a_sent_batch_is_read_later_while_other_batches_come_and_go(
    redis_client: redis.Redis,
) -> None:
    written = Batch(redis_client)
    written.add("SET", "decision", "a")
    written.hgetall("missing")
    sent = written.send()
    other = Batch(redis_client)  # the thread's other batches meanwhile
    other.add("INCR", "counter")
    other.get("decision")  # the sent write is applied before anything sent after it
    assert other.execute() == [1, "a"]
    assert sent.replies() == ["OK", {}]  # shaped as execute shapes them
    assert sent.replies() == ["OK", {}]  # read once, answered again


def test_a_sent_batch_reports_an_error_reply_and_leaves_a_clean_connection(
    redis_client: redis.Redis,
) -> None:
    redis_client.set("text", "x")
    failing = Batch(redis_client)
    failing.add("HSET", "text", "f", "v")
    failing.add("SET", "after", "1")
    sent = failing.send()
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        sent.replies()
    assert isinstance(sent.replies(raising=False)[0], redis.ResponseError)
    again = Batch(redis_client)
    again.get("after")
    assert again.send().replies() == ["1"]  # the same side connection, clean
