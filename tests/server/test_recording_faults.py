"""Recording never fails the request (docs/measurement.md, "Events"; the README's "When
something goes wrong"): while Redis refuses writes (full: ``CONFIG SET maxmemory``), opens and
clicks under continuous load are still served and every lost event is counted in
``blanco_events_lost_total``. Images stay personal (their reads work), and clicks still follow
what the open showed: Redis refuses only the click's mark, which the click does without. Once
Redis takes writes again, events are recorded again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from models.measurement.event_stream import campaign_event_entries
from server.embedded_redis import EmbeddedRedis
from server.services import EXTENSION, Services
from tests.factories import landing, store_block, store_recipient, variant

pytestmark = pytest.mark.own_redis  # fills a Redis of its own: not on the cluster pass

HOT = "https://shop.example/hot"
AT_DAY = "2026-11-23"  # the test clock's day
IN_FLIGHT = 0.3
"""Requests asked this close to Redis filling or freeing may be answered as before it."""


@dataclass(frozen=True)
class Answer:
    """One request of the load: when it was asked, and what came back."""

    at: float
    path: str
    status: int
    personal: bool
    location: str | None = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    embedded = EmbeddedRedis(tmp_path / "own-redis")
    embedded.start()
    yield embedded
    embedded.stop()


def metric_total(app: Flask, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with ``labels`` in a scrape of ``app``."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def lost_events(app: Flask) -> float:
    return metric_total(app, "blanco_events_lost_total")


@pytest.mark.parametrize("background", [False, True])
def test_a_full_redis_loses_events_but_never_a_request(
    make_app: Callable[..., Flask], own_redis: EmbeddedRedis, background: bool
) -> None:
    app = make_app(redis_url=own_redis.url, record_in_background=background)
    services: Services = app.extensions[EXTENSION]
    store_block(services, [variant("hot", {"segment": "vip"})])
    store_recipient(services, "anna", segments=["vip"])
    query = {"r": services.signer.sign("anna")}
    answers: list[Answer] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        client = app.test_client()
        while not stop.is_set():
            asked = time.monotonic()
            image = client.get("/i/daily/hero.png", query_string=query)
            click = client.get("/c/daily/hero", query_string=query)
            with lock:
                answers.append(
                    Answer(
                        asked, "image", image.status_code, "X-Blanco-Fallback" not in image.headers
                    )
                )
                location = landing(click)
                answers.append(Answer(asked, "click", click.status_code, location == HOT, location))

    control = redis.Redis.from_url(own_redis.url)
    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        full = time.monotonic()
        control.config_set("maxmemory", 1)  # below what is in use: every write is refused
        time.sleep(1.5)
        lost_while_full = lost_events(app)
        control.config_set("maxmemory", 0)
        freed = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        control.config_set("maxmemory", 0)
    app.extensions["blanco.open"].recorder.flush()

    assert all(a.status in (200, 302) for a in answers)
    while_full = [a for a in answers if full + IN_FLIGHT <= a.at < freed - IN_FLIGHT]
    images = [a for a in while_full if a.path == "image"]
    clicks = [a for a in while_full if a.path == "click"]
    assert len(images) > 5
    assert all(a.personal for a in images), "reads still work: the image stays personal"
    assert clicks
    assert all(a.location == HOT for a in clicks), "the refused mark does not fail the click"
    assert lost_while_full >= len(images)
    after = [a for a in answers if a.at >= freed + IN_FLIGHT]
    assert after
    assert all(a.personal for a in after)
    recorded = len(list(campaign_event_entries(services.redis, "daily")))
    assert recorded >= len(after)
    control.close()


def test_a_refused_decision_write_is_tried_once_and_the_open_stays_personal(
    make_app: Callable[..., Flask], own_redis: EmbeddedRedis
) -> None:
    """The decision goes out before the render; Redis refusing it (full) costs the open no
    second try: the image is personal, the failure counted once, and the click follows the
    same content (decided again the same way)."""
    app = make_app(redis_url=own_redis.url, record_in_background=True)
    services: Services = app.extensions[EXTENSION]
    store_block(services, [variant("hot", {"segment": "vip"})])
    store_recipient(services, "anna", segments=["vip"])
    query = {"r": services.signer.sign("anna")}
    client = app.test_client()
    redis.Redis.from_url(own_redis.url).config_set("maxmemory", 1)  # every write refused
    image = client.get("/i/daily/hero.png", query_string=query)
    assert image.status_code == 200
    assert "X-Blanco-Fallback" not in image.headers
    assert metric_total(app, "blanco_redis_errors_total", operation="decision") == 1
    assert landing(client.get("/c/daily/hero", query_string=query)) == HOT


@pytest.mark.parametrize("background", [False, True])
def test_a_redis_that_forgot_the_marking_script_gets_it_again_and_counts_once(
    make_app: Callable[..., Flask], own_redis: EmbeddedRedis, background: bool
) -> None:
    """A restarted or failed-over Redis has no scripts: the marks it refuses are sent again
    after loading it, and nothing else is written twice."""
    app = make_app(redis_url=own_redis.url, record_in_background=background)
    services: Services = app.extensions[EXTENSION]
    store_block(services, [variant("hot", {"segment": "vip"})])
    client = app.test_client()
    control = redis.Redis.from_url(own_redis.url)
    for person in ("anna", "bram", "chloe"):
        store_recipient(services, person, segments=["vip"])
        control.script_flush()  # as after a restart
        query = {"r": services.signer.sign(person)}
        assert client.get("/i/daily/hero.png", query_string=query).status_code == 200
        assert client.get("/c/daily/hero", query_string=query).status_code == 302
    assert app.extensions["blanco.open"].recorder.flush(timeout=5)
    arm = services.stats.arms("daily")["hero"]["hot"]
    assert (arm.recipients, arm.openers, arm.clickers) == (3, 3, 3)
    assert lost_events(app) == 0
    report = services.stats.report("daily", [AT_DAY])
    assert [(row.opens, row.clicks) for row in report] == [(3, 3)]  # counted once each
