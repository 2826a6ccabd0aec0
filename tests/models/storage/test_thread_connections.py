"""Each thread keeps one pooled connection per Redis node between batches, checked before every
use: replaced when Redis closed it, when the pool was reset, after a failure, and never shared
with another thread or a forked child."""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

import redis

from models.storage.batch import Batch
from models.storage.thread_connections import connection_of, forget

KEY = "{r:anna}:profile"


def node_client(client: Any) -> redis.Redis:
    """The client of the node that holds ``KEY`` (the client itself on a single Redis)."""
    cluster = getattr(client, "nodes_manager", None)
    if cluster is None:
        found: redis.Redis = client
        return found
    node = client.nodes_manager.get_node_from_slot(client.keyslot(KEY))
    return client.get_redis_connection(node)


def read(client: Any) -> list[Any]:
    batch = Batch(client)
    batch.hset(KEY, "first_name", "Anna")
    batch.hget(KEY, "first_name")
    return batch.execute()


def client_id(connection: Any) -> int:
    """The id Redis gave the connection."""
    connection.send_command("CLIENT", "ID")
    found: int = connection.read_response()
    return found


def test_a_thread_sends_every_batch_on_the_same_connection(redis_client: Any) -> None:
    pool = node_client(redis_client).connection_pool
    read(redis_client)
    held = connection_of(pool)
    first = client_id(held)

    for _ in range(5):
        assert read(redis_client) == [0, "Anna"]
    assert connection_of(pool) is held
    assert client_id(held) == first  # the same connection on Redis's side too


def test_threads_never_share_a_connection(redis_client: Any) -> None:
    pool = node_client(redis_client).connection_pool
    seen: list[Any] = []
    ready = threading.Barrier(4)

    def use() -> None:
        read(redis_client)
        seen.append(connection_of(pool))
        ready.wait()  # every thread holds its connection at once

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(connection) for connection in seen}) == 4


def test_a_connection_redis_closed_is_replaced_before_the_next_batch(redis_client: Any) -> None:
    node = node_client(redis_client)
    read(redis_client)
    held = connection_of(node.connection_pool)
    own_id = client_id(held)
    node.client_kill_filter(_id=own_id)  # as a Redis restart or its idle timeout would

    assert read(redis_client) == [0, "Anna"]  # no error: checked and reconnected first
    assert client_id(held) != own_id


def test_a_reset_pool_gives_a_fresh_connection(redis_client: Any) -> None:
    node = node_client(redis_client)
    read(redis_client)
    held = connection_of(node.connection_pool)
    before = client_id(held)

    node.connection_pool.disconnect()  # what a breaker does when its window opens

    assert read(redis_client) == [0, "Anna"]
    assert client_id(held) != before


def test_a_failed_connection_is_closed_given_back_and_not_used_again(redis_client: Any) -> None:
    pool = node_client(redis_client).connection_pool
    read(redis_client)
    failed = connection_of(pool)

    forget(pool, failed)

    assert failed._sock is None
    assert failed in pool._available_connections
    assert failed not in pool._in_use_connections
    assert connection_of(pool)._sock is not None  # taken from the pool again, connected
    assert read(redis_client) == [0, "Anna"]


def test_a_finished_thread_gives_its_connection_back(redis_client: Any) -> None:
    pool = node_client(redis_client).connection_pool
    taken: list[Any] = []

    def use() -> None:
        read(redis_client)
        taken.append(connection_of(pool))

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    gc.collect()

    assert taken[0] in pool._available_connections
    assert taken[0] not in pool._in_use_connections


def test_a_forked_child_connects_afresh(redis_client: Any) -> None:
    pool = node_client(redis_client).connection_pool
    read(redis_client)
    parent = connection_of(pool)
    parent_id = client_id(parent)

    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            mine = connection_of(pool)
            code = 0 if mine is not parent and client_id(mine) != parent_id else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert read(redis_client) == [0, "Anna"]  # the parent's connection is intact
