"""Prometheus metrics: requests timed by URL rule, open-time counters, registries per app."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import (
    CHILDREN_KEPT,
    EXTENSION,
    METRICS_FOLDER,
    MULTIPROC_ENV,
    OTHER_METHOD,
    REQUEST_BUCKETS,
    Children,
    Metrics,
    RequestMetrics,
    fallback_label,
    install_metrics,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

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


def test_a_failing_after_request_hook_counts_once_as_500(app: Flask) -> None:
    @app.after_request
    def broken(response: Response) -> Response:
        raise RuntimeError("a hook failed")

    app.config["TESTING"] = False  # as in production: Flask answers 500 and runs the hooks again
    metrics = install_metrics(app)

    assert app.test_client().get("/healthz").status_code == 500

    samples = parse(metrics.exposition().decode())
    requests = "blanco_http_requests_total"
    assert value(samples, requests, route="/healthz", method="GET", status="500") == 1
    assert value(samples, requests, route="/healthz", method="GET", status="200") is None
    assert value(samples, "blanco_http_request_duration_seconds_count", route="/healthz") == 1


def test_an_exception_the_app_lets_through_counts_as_500(app: Flask) -> None:
    @app.after_request
    def broken(response: Response) -> Response:
        raise RuntimeError("a hook failed")

    metrics = install_metrics(app)  # TESTING: Flask lets the exception through, answers nothing

    with pytest.raises(RuntimeError, match="a hook failed"):
        app.test_client().get("/healthz")

    samples = parse(metrics.exposition().decode())
    counted = {
        dict(labels)["status"]: count
        for (name, labels), count in samples.items()
        if name == "blanco_http_requests_total"
    }
    assert counted == {"500": 1}


def test_a_route_answering_without_flask_counts_in_the_same_series(
    app: Flask, metrics: Metrics, client: FlaskClient
) -> None:
    flask_app = app.wsgi_app

    def lean(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """A WSGI route in front of Flask that answers image paths itself."""
        if not environ["PATH_INFO"].startswith("/i/"):
            return flask_app(environ, start_response)
        start_response("200 OK", [("Content-Type", "image/png")])
        metrics.count_request(IMAGE_RULE, environ["REQUEST_METHOD"], 200, 0.0004)
        return [b"png"]

    app.wsgi_app = lean  # type: ignore[method-assign]
    assert client.get("/i/x/y.png").status_code == 200
    assert client.open("/i/x/y.png", method="BREW").status_code == 200
    app.wsgi_app = flask_app  # type: ignore[method-assign]
    assert client.get("/i/x/y.png").status_code == 200  # through Flask and RequestMetrics

    samples = scrape(client)
    requests = "blanco_http_requests_total"
    assert value(samples, requests, route=IMAGE_RULE, method="GET", status="200") == 2
    assert value(samples, requests, route=IMAGE_RULE, method=OTHER_METHOD, status="200") == 1
    duration = "blanco_http_request_duration_seconds"
    assert value(samples, f"{duration}_count", route=IMAGE_RULE) == 3
    assert value(samples, f"{duration}_bucket", route=IMAGE_RULE, le="0.001") >= 2  # type: ignore[operator]


def test_request_metrics_wrap_the_app_once(app: Flask) -> None:
    install_metrics(app)
    install_metrics(app)

    wrappers = []
    layer: Any = app.wsgi_app
    while hasattr(layer, "app"):  # the open-time routes, then the request wrappers
        wrappers.append(type(layer))
        layer = layer.app
    assert wrappers.count(RequestMetrics) == 1


def test_labelled_children_are_kept_up_to_a_bound() -> None:
    made: list[int] = []

    def make(key: int) -> str:
        made.append(key)
        return f"child {key}"

    children: Children[int, str] = Children(make)
    for key in range(CHILDREN_KEPT + 5):
        assert children[key] == f"child {key}"
    assert children[3] == "child 3"  # kept: not made again
    assert children[CHILDREN_KEPT + 1] == f"child {CHILDREN_KEPT + 1}"  # past the bound: made

    assert len(children) == CHILDREN_KEPT
    assert len(made) == CHILDREN_KEPT + 6


def test_unbounded_fallback_reasons_count_as_other(metrics: Metrics, client: FlaskClient) -> None:
    for n in range(CHILDREN_KEPT + 10):
        metrics.fallback(f"recipient {n} is odd")
    metrics.fallback("redis: ConnectionError")

    samples = scrape(client)
    assert value(samples, "blanco_fallbacks_total", reason="other") == CHILDREN_KEPT + 10
    assert value(samples, "blanco_fallbacks_total", reason="redis") == 1


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
    import os, sys, time
    from pathlib import Path
    from prometheus_client.multiprocess import MultiProcessCollector
    from server.metrics import Metrics, enable_multiprocess, mark_worker_dead

    metrics = Metrics()  # before: as an app gunicorn preloads
    assert metrics.multiprocess == ("PROMETHEUS_MULTIPROC_DIR" in os.environ)
    folder = enable_multiprocess(Path(sys.argv[1]))
    assert metrics.multiprocess
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    workers = []
    for worker in range(2):
        pid = os.fork()
        if pid == 0:
            metrics.cache("miss")
            metrics.observe_render("banner", 0.004)
            metrics.count_request("/healthz", "GET", 200, 0.002)
            if worker == 0:
                metrics.flush()  # as gunicorn's worker_exit hook does
            else:  # killed outright: the flushing thread has handed the counts over meanwhile
                mine = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / f"counter_{os.getpid()}.db"
                deadline = time.monotonic() + 10
                while not [
                    sample
                    for family in MultiProcessCollector.merge([str(mine)])
                    for sample in family.samples
                    if sample.name == "blanco_render_cache_total" and sample.value == 1
                ]:
                    assert time.monotonic() < deadline, "the counts never reached the folder"
                    time.sleep(0.05)
            os._exit(0)
        workers.append(pid)
    for pid in workers:
        assert os.waitpid(pid, 0)[1] == 0
        mark_worker_dead(pid)
    metrics.cache("hit_local")
    sys.stderr.write(str(folder))
    sys.stdout.write(metrics.exposition().decode())
    """
)


@pytest.mark.parametrize("configured", [False, True], ids=["data folder", "variable"])
def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path, configured: bool) -> None:
    data = tmp_path / "data"
    folder = tmp_path / "elsewhere" if configured else data / METRICS_FOLDER
    folder.mkdir(parents=True)
    (folder / "counter_999999.db").write_bytes(b"left over from a previous run")
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    if configured:
        env[MULTIPROC_ENV] = str(folder)
    root = Path(__file__).resolve().parents[2]

    result = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT, str(data)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == str(folder.resolve())
    assert not (folder / "counter_999999.db").exists()
    samples = parse(result.stdout)
    assert value(samples, "blanco_render_cache_total", result="miss") == 2
    assert value(samples, "blanco_render_cache_total", result="hit_local") == 1
    assert value(samples, "blanco_renders_total", block_type="banner") == 2
    assert value(samples, "blanco_render_seconds_bucket", block_type="banner", le="0.005") == 2
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(samples, "blanco_http_requests_total", **healthz) == 2
