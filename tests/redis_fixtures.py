"""Session-wide Redis topologies, as pytest fixtures (registered in ``tests/conftest.py``):
``redis_cluster`` and ``redis_sentinel`` start on first use, under pytest's temporary folder,
and stop when the session ends, also after failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisClusterProcesses, SentinelProcesses


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A three-master Redis Cluster for the session; ``reset()`` it after changing its slots."""
    with RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelProcesses]:
    """A primary, a replica and three Sentinels monitoring them as ``blanco``, for the session.

    Tests that fail the primary over start their own ``SentinelProcesses`` instead.
    """
    with SentinelProcesses(tmp_path_factory.mktemp("redis-sentinel")) as sentinel:
        yield sentinel
