"""Redis down or full: the admin and channel APIs answer 503 problem details with Retry-After.

Real faults on a throwaway redis-server: stopped for "down", ``CONFIG SET maxmemory`` for
"full" (writes then fail with ``OOM command not allowed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from server.embedded_redis import EmbeddedRedis
from server.services import Services
from tests.factories import AdminApi, block, problem, store_block, variant

pytestmark = pytest.mark.own_redis  # starts Redis servers of its own: not on the cluster pass


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, stopped at the end if the test has not."""
    embedded = EmbeddedRedis(tmp_path / "own-redis")
    embedded.start()
    yield embedded
    if embedded.running:
        embedded.stop()


@pytest.fixture
def own_app(make_app: Callable[..., Flask], own_redis: EmbeddedRedis) -> Flask:
    """The app on the throwaway Redis; Retry-After from a 2.5 s circuit breaker (rounded up)."""
    return make_app(
        redis_url=own_redis.url, redis_timeout_seconds=0.2, redis_retry_after_seconds=2.5
    )


def keys_of(app: Flask, *scopes: str) -> dict[str, str]:
    """Authorization headers with a new key of ``scopes``."""
    services: Services = app.extensions["blanco"]
    _, key = services.api_keys.create("tests", list(scopes))  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {key}"}


def unavailable(response: object) -> str:
    """The detail of a 503 problem that says when to retry."""
    body = problem(response, 503)  # type: ignore[arg-type]
    assert response.headers["Retry-After"] == "3"  # type: ignore[attr-defined]
    detail: str = body["detail"]
    assert "Redis" in detail
    return detail


def test_redis_down_gives_503_on_the_admin_and_channel_apis(
    own_app: Flask, own_redis: EmbeddedRedis
) -> None:
    services: Services = own_app.extensions["blanco"]
    store_block(services, [variant("v", {"segment": "vip"})])
    api = AdminApi(own_app.test_client(), keys_of(own_app, "admin"))
    channel = keys_of(own_app, "channel")
    token = services.signer.sign("anna")
    assert api.get("/campaigns").status_code == 200
    own_redis.stop()

    assert "cannot be reached" in unavailable(api.get("/campaigns"))
    unavailable(api.post("/campaigns", json={"id": "spring"}))
    unavailable(api.put("/recipients/anna/profile", json={"attributes": {"first_name": "A"}}))
    decision = api.client.get(
        "/x/v1/campaigns/daily/blocks/hero/decision", query_string={"r": token}, headers=channel
    )
    unavailable(decision)


def test_a_full_redis_refuses_writes_with_503_and_reads_still_work(
    own_app: Flask, own_redis: EmbeddedRedis
) -> None:
    api = AdminApi(own_app.test_client(), keys_of(own_app, "admin"))
    assert api.post("/campaigns", json={"id": "daily"}).status_code == 201
    control = redis.Redis.from_url(own_redis.url)
    control.config_set("maxmemory", 1)  # below what is in use: every write is refused
    try:
        assert "is full" in unavailable(api.post("/campaigns", json={"id": "spring"}))
        full = api.post("/campaigns/daily/blocks", json=block(variants=[variant("v")]))
        unavailable(full)
        assert api.get("/campaigns/daily").status_code == 200
    finally:
        control.config_set("maxmemory", 0)
        control.close()
    assert api.post("/campaigns", json={"id": "spring"}).status_code == 201
