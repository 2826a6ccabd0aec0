"""Redis clients from one URL: the three forms, clear refusals, and passwords kept out of every
message."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from models.storage.clients import (
    LazyCluster,
    RedisUrlError,
    cluster_of,
    connect,
    parse_redis_url,
    redact,
)
from server.config import ConfigError, load_settings
from server.services import redis_clients

SECRET = "pa55-word-x7"


@pytest.mark.parametrize(
    ("url", "kind", "hosts", "service"),
    [
        ("redis://127.0.0.1:6379/2", "single", (), None),
        ("rediss://:pw@cache.example:6380/0", "single", (), None),
        ("unix:///run/redis.sock?db=3", "single", (), None),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
            "cluster",
            (("10.0.0.1", 7000), ("10.0.0.2", 7001)),
            None,
        ),
        ("rediss+cluster://node.example", "cluster", (("node.example", 6379),), None),
        (
            "redis+sentinel://s1:26379,s2:26380/blanco",
            "sentinel",
            (("s1", 26379), ("s2", 26380)),
            "blanco",
        ),
        ("rediss+sentinel://s1/blanco/2", "sentinel", (("s1", 26379),), "blanco"),
    ],
)
def test_the_three_forms(
    url: str, kind: str, hosts: tuple[tuple[str, int], ...], service: str | None
) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.hosts, target.service) == (kind, hosts, service)
    assert target.tls == url.startswith("rediss")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:6379", "use redis://"),
        ("redis+cluster://", "host:port"),
        ("redis+cluster://10.0.0.1:notaport", "is not host:port"),
        ("redis+cluster://10.0.0.1:7000/3", "only database 0"),
        ("redis+sentinel://s1:26379", "name the service"),
        ("redis+sentinel://s1:26379/blanco/x", "must be a number"),
        (f"redis+sentinel://:{SECRET}@s1:26379", "name the service"),
    ],
)
def test_unusable_urls_are_refused_without_the_password(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError, match=says) as refused:
        parse_redis_url(url)
    assert SECRET not in str(refused.value)


def test_settings_name_the_variable_and_hide_the_password() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(
            {"redis_url": f"redis+cluster://:{SECRET}@h:70000", "signing_keys": "k" * 40},
            environ={},
        )
    assert "REDIS_URL" in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@h:6379/0", "redis://:***@h:6379/0"),
        (f"redis://user:{SECRET}@h:6379/0", "redis://user:***@h:6379/0"),
        (f"redis+cluster://u:{SECRET}@a:1,b:2", "redis+cluster://u:***@a:1,b:2"),
        (
            f"redis+sentinel://s:1/blanco?sentinel_password={SECRET}",
            "redis+sentinel://s:1/blanco?sentinel_password=***",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_cluster_client_is_built_on_first_use_not_before() -> None:
    client = connect(parse_redis_url("redis+cluster://127.0.0.1:1"), decode=True, timeout=0.2)
    assert isinstance(client, LazyCluster)  # nothing was asked yet: an app can start
    with pytest.raises((redis.RedisError, redis.exceptions.RedisClusterException)):
        client.ping()


def test_the_client_is_a_cluster_client_exactly_for_a_cluster_url(redis_url: str) -> None:
    target = parse_redis_url(redis_url)
    client = connect(target, decode=True, timeout=1.0)
    assert isinstance(cluster_of(client), RedisCluster) == (target.kind == "cluster")
    assert client.ping() is True


@pytest.mark.parametrize(
    "url",
    [
        "redis://:ab/cd+ef==@redis.example:6379/0",
        "redis+cluster://:ab/cd+ef==@10.0.0.1:7000,10.0.0.2:7001",
    ],
)
def test_a_password_with_a_slash_is_never_shown(url: str) -> None:
    """Review: a generated (base64) password often holds ``/``; ``redact`` splits the URL at
    the first ``/`` and so leaves such a password in the refusal that startup prints."""
    assert "cd+ef" not in redact(url)
    with pytest.raises(RedisUrlError) as refused:
        parse_redis_url(url)
    assert "cd+ef" not in str(refused.value)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "unix:///nowhere/redis.sock?db=2"])
def test_every_client_takes_the_timeout_for_socket_and_connect(url: str) -> None:
    settings = load_settings(
        {"redis_url": url, "signing_keys": "k" * 40, "redis_timeout_seconds": 0.37}, environ={}
    )
    text, raw, open_path = redis_clients(settings)  # builds clients; connects to nothing
    for client, decodes in ((text, True), (raw, False), (open_path, True)):
        options = client.connection_pool.connection_kwargs
        assert options["socket_timeout"] == 0.37
        assert options["socket_connect_timeout"] == 0.37
        assert options["decode_responses"] is decodes


def test_sentinel_urls_authenticate_data_nodes_and_sentinels_apart() -> None:
    url = "redis+sentinel://app:data-pw@s1:26379,s2:26380/blanco/3?sentinel_password=sentinel-pw"
    client = connect(parse_redis_url(url), decode=True, timeout=0.4)  # connects to nothing yet
    pool = client.connection_pool
    assert pool.service_name == "blanco"
    assert pool.connection_kwargs["username"] == "app"
    assert pool.connection_kwargs["password"] == "data-pw"
    assert pool.connection_kwargs["db"] == 3
    sentinels = pool.sentinel_manager.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ] == [("s1", 26379), ("s2", 26380)]
    for sentinel in sentinels:
        options = sentinel.connection_pool.connection_kwargs
        assert options["password"] == "sentinel-pw"
        assert options["socket_timeout"] == 0.4
        assert options["socket_connect_timeout"] == 0.4
    without = connect(
        parse_redis_url("redis+sentinel://:data-pw@s1:26379/blanco"), decode=True, timeout=0.4
    )
    for sentinel in without.connection_pool.sentinel_manager.sentinels:
        assert sentinel.connection_pool.connection_kwargs.get("password") is None
