"""Shared fixtures: a real Redis (``REDIS_URL`` or an embedded server), flushed per test."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from server import create_app
from server.embedded_redis import EmbeddedRedis
from server.services import EXTENSION, Services
from tests.factories import FakeClock

pytest_plugins = ["tests.redis_fixtures"]  # redis_cluster, redis_sentinel

TEST_DB = 15
SIGNING_KEY = "test-signing-key-0123456789abcdef-0123456789"


def _with_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db``."""
    if url.startswith("unix://"):
        base = url.split("?")[0]
        return f"{base}?db={db}"
    scheme, _, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0]
    return f"{scheme}://{host}/{db}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test Redis: REDIS_URL when set, else an embedded server for the session."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield _with_db(configured, TEST_DB)
        return
    with EmbeddedRedis(Path(tmp_path_factory.mktemp("redis"))) as embedded:
        yield _with_db(embedded.url, TEST_DB)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the flushed test database; flushed again afterwards."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    """An injectable clock, fixed at a known Monday morning."""
    return FakeClock(dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC))


@pytest.fixture
def make_app(
    redis_url: str, redis_client: redis.Redis, clock: FakeClock, tmp_path: Path
) -> Callable[..., Flask]:
    """Build an app on the test Redis with extra setting overrides."""

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
        return app

    return build


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
