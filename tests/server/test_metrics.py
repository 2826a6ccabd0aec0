"""Prometheus metrics: requests timed by URL rule, open-time counters, registries per app."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import (
    EXTENSION,
    REQUEST_BUCKETS,
    Metrics,
    fallback_label,
    install_metrics,
)

IMAGE_RULE = "/i/<campaign_id>/<block_id>.<extension>"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> Samples:
    """GET /metrics and parse it."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None when it is not exposed."""
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def metrics(app: Flask) -> Metrics:
    return install_metrics(app)


def test_requests_are_counted_and_timed_by_url_rule(
    app: Flask, metrics: Metrics, client: FlaskClient
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/i/x/y.png", query_string={"r": "secret-token"}).status_code == 200
    assert client.get("/i/other/block.png").status_code == 200

    samples = scrape(client)

    requests = "blanco_http_requests_total"
    assert value(samples, requests, route="/healthz", method="GET", status="200") == 1
    assert value(samples, requests, route=IMAGE_RULE, method="GET", status="200") == 2
    duration = "blanco_http_request_duration_seconds"
    assert value(samples, f"{duration}_count", route=IMAGE_RULE) == 2
    assert value(samples, f"{duration}_count", route="/healthz") == 1
    sum_ = value(samples, f"{duration}_sum", route=IMAGE_RULE)
    assert sum_ is not None
    assert 0 < sum_ < 10
    buckets = [
        samples[(f"{duration}_bucket", frozenset({("route", IMAGE_RULE), ("le", str(bound))}))]
        for bound in REQUEST_BUCKETS
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert value(samples, f"{duration}_bucket", route=IMAGE_RULE, le="+Inf") == 2
    labels = {label for _, sample_labels in samples for label in sample_labels}
    assert not [label for label in labels if "secret" in label[1] or label[1].startswith("/i/x")]


def test_the_scrape_itself_is_counted_afterwards(metrics: Metrics, client: FlaskClient) -> None:
    first = scrape(client)
    second = scrape(client)

    requests = "blanco_http_requests_total"
    assert value(first, requests, route="/metrics", method="GET", status="200") is None
    assert value(second, requests, route="/metrics", method="GET", status="200") == 1
    assert client.get("/metrics").headers["Cache-Control"] == "no-store"


def test_unmatched_paths_and_made_up_methods_keep_labels_bounded(
    metrics: Metrics, client: FlaskClient
) -> None:
    assert client.get("/no/such/page/12345").status_code == 404
    assert client.open("/healthz", method="BREW").status_code == 405

    samples = scrape(client)

    requests = "blanco_http_requests_total"
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    assert value(samples, requests, route="unmatched", method="OTHER", status="405") == 1


def test_a_failing_view_counts_as_500(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("renderer exploded")

    app.add_url_rule("/boom", view_func=boom)
    install_metrics(app)
    client = app.test_client()

    assert client.get("/boom").status_code == 500

    samples = scrape(client)
    assert value(samples, "blanco_http_requests_total", route="/boom", method="GET", status="500")
    assert value(samples, "blanco_http_request_duration_seconds_count", route="/boom") == 1


def test_open_time_counters(metrics: Metrics, client: FlaskClient) -> None:
    metrics.observe_render("banner", 0.004)
    metrics.observe_render("banner", 0.07)
    metrics.observe_render("countdown", 0.2)
    metrics.cache("hit_local")
    metrics.cache("hit_local")
    metrics.cache("hit_redis")
    metrics.cache("miss")
    metrics.decision("daily", "hero", "hot")
    metrics.decision("daily", "hero", "hot")
    metrics.decision("daily", "hero", None)
    metrics.fallback("redis: ConnectionError")
    metrics.fallback("redis: TimeoutError")
    metrics.fallback("render error")
    metrics.fallback("a reason nobody listed 42")
    metrics.redis_error("load")
    metrics.event_lost("open")

    samples = scrape(client)

    assert value(samples, "blanco_renders_total", block_type="banner") == 2
    assert value(samples, "blanco_renders_total", block_type="countdown") == 1
    render = "blanco_render_seconds_bucket"
    assert value(samples, render, block_type="banner", le="0.001") == 0
    assert value(samples, render, block_type="banner", le="0.005") == 1
    assert value(samples, render, block_type="banner", le="0.08") == 2
    assert value(samples, render, block_type="countdown", le="0.1") == 0
    assert value(samples, render, block_type="countdown", le="+Inf") == 1
    assert value(samples, "blanco_render_seconds_sum", block_type="banner") == pytest.approx(0.074)
    assert value(samples, "blanco_render_cache_total", result="hit_local") == 2
    assert value(samples, "blanco_render_cache_total", result="hit_redis") == 1
    assert value(samples, "blanco_render_cache_total", result="miss") == 1
    decisions = "blanco_decisions_total"
    assert value(samples, decisions, campaign="daily", block="hero", variant="hot") == 2
    assert value(samples, decisions, campaign="daily", block="hero", variant="_fallback") == 1
    assert value(samples, "blanco_fallbacks_total", reason="redis") == 2
    assert value(samples, "blanco_fallbacks_total", reason="render_error") == 1
    assert value(samples, "blanco_fallbacks_total", reason="other") == 1
    assert value(samples, "blanco_redis_errors_total", operation="load") == 1
    assert value(samples, "blanco_events_lost_total", event="open") == 1


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("redis: ConnectionError", "redis"),
        ("Redis:TimeoutError", "redis"),
        ("error", "error"),
        ("render error", "render_error"),
        ("last resort", "last_resort"),
        ("no verified recipient", "no_verified_recipient"),
        ("campaign paused", "campaign_paused"),
        ("recipient 8812 is odd", "other"),
        ("", "other"),
    ],
)
def test_fallback_reasons_are_a_fixed_vocabulary(reason: str, label: str) -> None:
    assert fallback_label(reason) == label


def test_two_apps_in_one_process_count_separately(make_app: Callable[..., Flask]) -> None:
    first, second = make_app(), make_app()
    first_metrics, second_metrics = install_metrics(first), install_metrics(second)
    assert first_metrics.registry is not second_metrics.registry

    first.test_client().get("/healthz")
    first.test_client().get("/healthz")
    second.test_client().get("/healthz")
    first_metrics.cache("miss")

    requests = "blanco_http_requests_total"
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    first_samples = scrape(first.test_client())
    second_samples = scrape(second.test_client())
    assert value(first_samples, requests, **healthz) == 2
    assert value(second_samples, requests, **healthz) == 1
    assert value(first_samples, "blanco_render_cache_total", result="miss") == 1
    assert value(second_samples, "blanco_render_cache_total", result="miss") is None


def test_install_is_idempotent_and_kept_in_extensions(app: Flask) -> None:
    installed = install_metrics(app)

    assert install_metrics(app) is installed
    assert app.extensions[EXTENSION] is installed


MULTIPROCESS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from server.metrics import Metrics, mark_worker_dead, prepare_multiprocess_dir

    prepare_multiprocess_dir()
    metrics = Metrics()
    assert metrics.multiprocess
    workers = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            metrics.cache("miss")
            metrics.observe_render("banner", 0.004)
            os._exit(0)
        workers.append(pid)
    for pid in workers:
        assert os.waitpid(pid, 0)[1] == 0
        mark_worker_dead(pid)
    metrics.cache("hit_local")
    sys.stdout.write(metrics.exposition().decode())
    """
)


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over from a previous run")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    root = Path(__file__).resolve().parents[2]

    result = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    samples = parse(result.stdout)
    assert value(samples, "blanco_render_cache_total", result="miss") == 2
    assert value(samples, "blanco_render_cache_total", result="hit_local") == 1
    assert value(samples, "blanco_renders_total", block_type="banner") == 2
    assert value(samples, "blanco_render_seconds_bucket", block_type="banner", le="0.005") == 2
