"""The embedded Redis: starts from the packaged binary, persists with AOF, stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from server.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server

pytestmark = pytest.mark.own_redis  # starts Redis servers of its own: not on the cluster pass


def test_the_packaged_binary_is_found() -> None:
    assert Path(find_redis_server()).is_file()


def test_start_persist_stop_restart(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    with EmbeddedRedis(data) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        client.set("blanco:test", "kept")
        client.close()
    assert not server.running
    assert not (data / "redis.sock").exists()
    assert any(data.rglob("*.aof")) or (data / "appendonlydir").exists()

    with EmbeddedRedis(data) as again:
        client = redis.Redis.from_url(again.url, decode_responses=True)
        assert client.get("blanco:test") == "kept"
        client.close()


def test_refuses_a_socket_already_served(tmp_path: Path) -> None:
    with (
        EmbeddedRedis(tmp_path / "r"),
        pytest.raises(EmbeddedRedisError, match="already serves"),
    ):
        EmbeddedRedis(tmp_path / "r").start()


def test_stop_is_idempotent(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r")
    server.stop()
    server.start()
    server.stop()
    server.stop()
    assert not server.running


def test_only_a_unix_socket_and_aof_without_snapshots(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    with EmbeddedRedis(data) as server:
        assert server.url.startswith("unix://")
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = client.config_get("*")
        client.close()
    assert settings["port"] == "0"  # no TCP port
    assert Path(settings["unixsocket"]).parent == data
    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["save"] == ""  # no RDB snapshots
    assert not list(data.rglob("*.rdb"))
