"""Metrics under a real gunicorn with two workers: every scrape adds up every worker's counts,
whichever worker answers it, with nothing to set (``gunicorn.conf.py`` and ``blanco serve``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import METRICS_FOLDER
from server.metrics_tally import FLUSH_SECONDS
from server.services import Services
from tests.factories import store_block, store_recipient, variant
from tests.served import LAUNCHERS, Served, free_port, get, live_workers, server_env, serving

IMAGE_RULE = "/i/<campaign_id>/<block_id>.<extension>"
RECIPIENTS = ("anna", "bram", "chloe", "daan")
OPENS_PER_ROUND = 40
ROUNDS = 10  # at most: opens go on until both workers have answered some
SCRAPES = 12


def counted(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def decisions_by_worker(folder: Path) -> dict[int, float]:
    """Decisions each worker counted, read from its own file in the metrics folder."""
    found: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        found[pid] = sum(
            sample.value
            for metric in merged
            for sample in metric.samples
            if sample.name == "blanco_decisions_total"
        )
    return found


def settled(folder: Path, opens: int) -> dict[int, float]:
    """``decisions_by_worker`` once the workers' files add up to ``opens``: each worker hands
    its counts to its file within ``FLUSH_SECONDS`` (it must, as a worker killed outright loses
    what it has not handed over)."""
    deadline = time.monotonic() + FLUSH_SECONDS * 10
    while sum((found := decisions_by_worker(folder)).values()) < opens:
        if time.monotonic() > deadline:
            return found
        time.sleep(0.05)
    return found


@pytest.fixture(params=list(LAUNCHERS))
def server(
    request: pytest.FixtureRequest, redis_url: str, services: Services, tmp_path: Path
) -> Iterator[Served]:
    """Two gunicorn workers on the test Redis (started by the launcher the test is run with),
    with a block to open; the metrics folder holds a previous run's unreadable leftover."""
    store_block(services, [variant("hot", {"score": "travel_propensity", "gte": 0.5})])
    for recipient in RECIPIENTS:
        store_recipient(services, recipient, scores={"travel_propensity": 0.9})
    data = tmp_path / "data"
    (data / METRICS_FOLDER).mkdir(parents=True)
    (data / METRICS_FOLDER / "counter_999999.db").write_bytes(b"left over from a previous run")
    env = server_env(redis_url, free_port(), data, workers=2)
    log_path = tmp_path / "server.log"
    with serving(LAUNCHERS[request.param], env, log_path, stop=signal.SIGQUIT) as served:
        yield served


def open_images(server: Served, services: Services, count: int) -> None:
    """``count`` image opens over fresh connections, eight at a time; each must succeed."""
    paths = [
        f"/i/daily/hero.png?r={services.signer.sign(RECIPIENTS[n % len(RECIPIENTS)])}"
        for n in range(count)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda path: get(server.port, path).status, paths))
    assert statuses == [200] * count


def scrapes(server: Served, count: int = SCRAPES) -> list[str]:
    """``count`` scrapes of /metrics, each on a connection of its own."""
    answers = [get(server.port, "/metrics") for _ in range(count)]
    assert [answer.status for answer in answers] == [200] * count
    return [answer.body.decode() for answer in answers]


def assert_every_scrape_counts(texts: list[str], opens: int) -> None:
    """Each scrape shows every open once: decisions, image requests and render cache lookups."""
    image_get = {"route": IMAGE_RULE, "method": "GET", "status": "200"}
    assert [counted(text, "blanco_decisions_total") for text in texts] == [opens] * len(texts)
    assert [counted(text, "blanco_http_requests_total", **image_get) for text in texts] == [
        opens
    ] * len(texts)
    assert [counted(text, "blanco_render_cache_total") for text in texts] == [opens] * len(texts)


def test_every_scrape_adds_up_every_worker_the_dead_ones_included(
    server: Served, services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / METRICS_FOLDER
    assert not (folder / "counter_999999.db").exists(), "the folder is emptied at start"

    opens = 0
    for _ in range(ROUNDS):
        open_images(server, services, OPENS_PER_ROUND)
        opens += OPENS_PER_ROUND
        if len([n for n in settled(folder, opens).values() if n]) == 2:
            break
    by_worker = settled(folder, opens)
    assert len([n for n in by_worker.values() if n]) == 2, f"one worker answered all: {by_worker}"
    assert sum(by_worker.values()) == opens
    assert_every_scrape_counts(scrapes(server), opens)

    victim = max(by_worker.items(), key=lambda item: item[1])[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in live_workers(server) or len(live_workers(server)) < 2:
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.05)  # polling the master's children, not waiting for time to pass
    server.wait_until_ready()
    open_images(server, services, OPENS_PER_ROUND)
    opens += OPENS_PER_ROUND

    assert sum(settled(folder, opens).values()) == opens
    assert_every_scrape_counts(scrapes(server), opens)
