"""Redis down or full: the admin and channel APIs answer 503 problem details with Retry-After.

Real faults on a throwaway redis-server: stopped for "down", ``CONFIG SET maxmemory`` for
"full" (writes then fail with ``OOM command not allowed``).
"""

from __future__ import annotations

import threading
import time
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


IN_FLIGHT = 0.5
"""Requests asked this close to Redis stopping may still be answered as before."""
RECOVERY = 2.0
"""Every answer is a 200 again this long after Redis answers: the breaker's window is 2.5 s,
but a request after it has passed is a probe, and Redis is back."""


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


def test_under_continuous_load_an_outage_is_503s_then_the_apis_answer_again(
    make_app: Callable[..., Flask], own_redis: EmbeddedRedis
) -> None:
    # a timeout that a busy shared machine does not reach while Redis runs
    own_app = make_app(
        redis_url=own_redis.url, redis_timeout_seconds=1.0, redis_retry_after_seconds=2.5
    )
    services: Services = own_app.extensions["blanco"]
    store_block(services, [variant("v", {"segment": "vip"})])
    admin = keys_of(own_app, "admin")
    channel = keys_of(own_app, "channel")
    token = services.signer.sign("anna")
    answers: list[tuple[float, str, int, str | None]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        client = own_app.test_client()
        while not stop.is_set():
            for name, path, query, headers in (
                ("admin", "/api/v1/campaigns", {}, admin),
                ("channel", decision, {"r": token}, channel),
            ):
                asked = time.monotonic()
                response = client.get(path, query_string=query, headers=headers)
                with lock:
                    answers.append(
                        (asked, name, response.status_code, response.headers.get("Retry-After"))
                    )

    warm = own_app.test_client()
    assert warm.get("/api/v1/campaigns", headers=admin).status_code == 200
    decision = "/x/v1/campaigns/daily/blocks/hero/decision"
    assert warm.get(decision, query_string={"r": token}, headers=channel).status_code == 200
    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        down = time.monotonic()
        own_redis.stop()
        time.sleep(4.0)
        restarting = time.monotonic()
        own_redis.start()
        back = time.monotonic()
        time.sleep(RECOVERY + 2.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)

    assert all(status in (200, 503) for _, _, status, _ in answers)
    for _, name, status, retry in answers:
        if status == 503:  # the admin API: the breaker's 2.5 s window rounded up; the
            # channel endpoint: 2 s when its read fails, the admin API's when its key check does
            assert retry == "3" if name == "admin" else retry in ("2", "3"), (name, retry)
    before = [a for a in answers if a[0] < down - IN_FLIGHT]
    # a request asked shortly before Redis returns may wait for it (the client's own retries)
    during = [a for a in answers if down + IN_FLIGHT <= a[0] < restarting - 1.5]
    assert before
    assert all(status == 200 for _, _, status, _ in before)
    for name in ("admin", "channel"):
        refused = [a for a in during if a[1] == name]
        assert len(refused) >= 2, name
        assert all(status == 503 for _, _, status, _ in refused), name
        settled = [a for a in answers if a[1] == name and a[0] >= back + RECOVERY]
        assert len(settled) > 10, f"{name}: too few answers after Redis came back"
        assert all(status == 200 for _, _, status, _ in settled), name
