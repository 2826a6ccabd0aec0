"""The circuit breaker under continuous load: after Redis fails and comes back, personalisation
returns within about a second, while every request in between is answered with a fallback.

The load runs in threads for the whole test, across the outage, as it would in production:
a breaker that extends its window on every skipped request never closes under steady traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask

from server.embedded_redis import EmbeddedRedis
from server.services import Services
from tests.factories import landing, store_block, store_recipient, variant

pytestmark = pytest.mark.own_redis  # starts Redis servers of its own: not on the cluster pass

RETRY_AFTER = 1.0
RECOVERY = 2.0
"""Personalisation must be back this long after Redis answers again: one breaker window (a
probe may fail just before Redis is back), the probe's own timeout, and slack for a busy test
machine. From the first personal answer on, every answer must be personal."""
IN_FLIGHT = 0.5
"""Requests made this close to a change (Redis stopping, the first personal answer) may still
be answered as before it, on a busy machine."""


def assert_back_for_good(load: Load, back: float, end: float) -> None:
    """Personalisation returned within RECOVERY of ``back`` and stayed."""
    after = load.between(back, end)
    first = min((a.at for a in after if a.personalised), default=None)
    assert first is not None, f"no personal answer in {end - back:.1f} s after Redis came back"
    assert first - back <= RECOVERY, f"personal answers came back after {first - back:.2f} s"
    settled = load.between(first + IN_FLIGHT, end)
    assert len(settled) > 20
    relapsed = sum(not a.personalised for a in settled)
    assert relapsed == 0, f"{relapsed} of {len(settled)} answers fell back again"


@dataclass(frozen=True)
class Answer:
    """One response of the load, with when it was asked for."""

    at: float
    path: str
    status: int
    personalised: bool


class Load:
    """Threads that request the image and the click of a personalised block without pause."""

    def __init__(self, app: Flask, token: str, threads: int = 3) -> None:
        self.app = app
        self.token = token
        self.threads = threads
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _run(self) -> None:
        client = self.app.test_client()
        query = {"r": self.token}
        while not self._stop.is_set():
            asked = time.monotonic()
            image = client.get("/i/daily/hero.png", query_string=query)
            image_answer = Answer(
                asked, "image", image.status_code, "X-Blanco-Fallback" not in image.headers
            )
            asked = time.monotonic()
            click = client.get("/c/daily/hero", query_string=query)
            click_answer = Answer(
                asked,
                "click",
                click.status_code,
                landing(click) == "https://shop.example/hot",
            )
            with self._lock:
                self.answers += [image_answer, click_answer]

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def between(self, start: float, end: float) -> list[Answer]:
        """The answers to requests made in [start, end)."""
        with self._lock:
            return [a for a in self.answers if start <= a.at < end]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (AOF on, so a restart keeps the data), stopped afterwards."""
    embedded = EmbeddedRedis(tmp_path / "own-redis")
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def personalised_app(make_app: Callable[..., Flask], own_redis: EmbeddedRedis) -> Flask:
    """An app on ``own_redis`` with a block that shows anna the 'hot' variant."""
    app = make_app(
        redis_url=own_redis.url,
        redis_retry_after_seconds=RETRY_AFTER,
    )
    services: Services = app.extensions["blanco"]
    store_block(services, [variant("hot", {"score": "p", "gte": 0.5}, background="#CC0000")])
    store_recipient(services, "anna", scores={"p": 0.9})
    return app


def _token(app: Flask) -> str:
    services: Services = app.extensions["blanco"]
    return services.signer.sign("anna")


def _wait_for(redis_url: str) -> float:
    """Block until Redis answers PING; the moment it did."""
    client = redis.Redis.from_url(redis_url, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return time.monotonic()
        except (redis.RedisError, OSError):
            time.sleep(0.01)
    raise AssertionError("Redis did not come back")


def test_personalisation_returns_after_a_restart_under_continuous_load(
    personalised_app: Flask, own_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with Load(personalised_app, _token(personalised_app)) as load:
        time.sleep(0.5)
        down = time.monotonic()
        own_redis.stop()
        time.sleep(2.5)  # three breaker windows of steady traffic against a dead Redis
        restarting = time.monotonic()
        own_redis.start()
        back = _wait_for(own_redis.url)
        time.sleep(RECOVERY + 1.0)
        end = time.monotonic()

    assert all(a.status < 500 for a in load.answers)
    before = load.between(0, down - IN_FLIGHT)
    assert before
    assert all(a.personalised for a in before)
    outage = load.between(down + IN_FLIGHT, restarting)
    assert len(outage) > 20
    assert not any(a.personalised for a in outage)
    assert_back_for_good(load, back, end)
    # the open breaker is logged once per window, not once per skipped request
    during = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(during) <= 10, f"{len(during)} warnings for {len(outage)} requests"


def test_personalisation_returns_after_a_stall_under_continuous_load(
    personalised_app: Flask, own_redis: EmbeddedRedis
) -> None:
    admin = redis.Redis.from_url(own_redis.url)
    with Load(personalised_app, _token(personalised_app)) as load:
        time.sleep(0.5)
        stalled = time.monotonic()
        admin.execute_command("DEBUG", "SLEEP", "1.5")  # returns when the stall ends
        back = time.monotonic()
        time.sleep(RECOVERY + 1.0)
        end = time.monotonic()

    assert all(a.status < 500 for a in load.answers)
    assert any(not a.personalised for a in load.between(stalled, back + 0.2))
    assert_back_for_good(load, back, end)
