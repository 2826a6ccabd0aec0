"""Shared fixtures: a real Redis (``REDIS_URL`` or an embedded server), flushed per test."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.storage.clients import LazyCluster, cluster_of, connect, parse_redis_url
from server import create_app
from server.embedded_redis import EmbeddedRedis
from server.services import EXTENSION, Services
from tests.factories import FakeClock
from tests.redis_servers import RedisClusterProcesses

pytest_plugins = ["tests.redis_fixtures"]  # redis_cluster, redis_sentinel

TEST_DB = 15
"""The database of a single Redis; a parallel run's workers take 15, 14, 13, … (a worker per
database, so that one's flush never empties another's)."""


def test_db() -> int:
    """This test process's database: 15, less the number of its parallel worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return TEST_DB - int(worker.removeprefix("gw") or 0)


SIGNING_KEY = "test-signing-key-0123456789abcdef-0123456789"


def _with_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db``."""
    if url.startswith("unix://"):
        base = url.split("?")[0]
        return f"{base}?db={db}"
    scheme, _, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0]
    return f"{scheme}://{host}/{db}"


TOPOLOGY_ENV = "BLANCO_TEST_TOPOLOGY"
"""``cluster`` runs the suite on a three-master Redis Cluster the session starts; unset (or
``single``) runs it on one Redis: ``REDIS_URL`` when set, else an embedded server."""


def topology() -> str:
    """The Redis topology this test session runs on."""
    return os.environ.get(TOPOLOGY_ENV, "single") or "single"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the cluster pass, leave out the tests that do not use the session's Redis: those
    that need none, and those that start their own (marked ``own_redis``). They ran on the
    single pass; here they would test nothing new."""
    if topology() != "cluster":
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        uses_shared = "redis_url" in getattr(item, "fixturenames", ())
        own = item.get_closest_marker("own_redis") is not None
        (kept if uses_shared and not own else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def redis_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The test Redis: a cluster (``BLANCO_TEST_TOPOLOGY=cluster``), else REDIS_URL when set
    (database 15, or the worker's: ``test_db``), else an embedded server for the session."""
    if topology() == "cluster":
        cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster.ports)
        return
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield _with_db(configured, test_db())
        return
    with EmbeddedRedis(Path(tmp_path_factory.mktemp("redis"))) as embedded:
        yield _with_db(embedded.url, test_db())


def _flush(client: Any) -> None:
    """Empty the test Redis: the database, or every primary of a cluster."""
    cluster = cluster_of(client)
    if cluster is None:
        client.flushdb(asynchronous=True)  # empty at once; memory freed in the background
        return
    for node in cluster.get_primaries():
        cluster.get_redis_connection(node).flushall(asynchronous=True)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A client on the flushed test Redis (a cluster client on a cluster); flushed again
    afterwards."""
    client = connect(parse_redis_url(redis_url), decode=True, timeout=5.0)
    cluster = cluster_of(client)
    _flush(client)
    yield cluster if cluster is not None else client
    _flush(client)
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    """An injectable clock, fixed at a known Monday morning."""
    return FakeClock(dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC))


def _close_clients(app: Flask) -> None:
    """Close an app's Redis clients, so that no connection outlives its test (an open socket
    found by the garbage collector later is a ResourceWarning, which fails the session)."""
    found: Services = app.extensions[EXTENSION]
    for client in (found.redis, found.redis_bytes, found.redis_open):
        if isinstance(client, LazyCluster) and not client.built:
            continue
        with contextlib.suppress(Exception):
            client.close()


@pytest.fixture
def make_app(
    redis_url: str, redis_client: redis.Redis, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build an app on the test Redis with extra setting overrides; its Redis clients are
    closed after the test."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        settings: dict[str, Any] = {
            "redis_url": redis_url,
            "signing_keys": SIGNING_KEY,
            "data_dir": tmp_path / "data",
            "public_url": "http://blanco.test",
            "record_in_background": False,  # tests read Redis right after a request
            "config_check_seconds": 0,  # tests open right after a configuration write
        }
        settings.update(overrides)
        app = create_app(settings)
        app.config["TESTING"] = True
        app.extensions[EXTENSION].clock = clock
        built.append(app)
        return app

    yield build
    for app in built:
        _close_clients(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app on the test Redis, with the fake clock."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    """The app's services."""
    found: Services = app.extensions[EXTENSION]
    return found


@pytest.fixture
def admin_headers(services: Services) -> dict[str, str]:
    """Authorization headers with an admin API key."""
    _, key = services.api_keys.create("tests", ["admin"])
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def ingest_headers(services: Services) -> dict[str, str]:
    """Authorization headers with an ingest-only API key."""
    _, key = services.api_keys.create("data team", ["ingest"])
    return {"Authorization": f"Bearer {key}"}
