"""Prometheus metrics: one ``Metrics`` per app, request timing hooks and the ``/metrics`` route.

``install_metrics(app)`` (called by the factory) builds the app's ``Metrics`` on its own
``CollectorRegistry``, never the process-wide default one, so several apps in one process (the
tests) keep separate counts. It is kept in ``app.extensions["blanco.metrics"]``.

Labels stay bounded: requests are labelled by their Flask URL rule (``/i/<campaign_id>/...``),
never by the raw path; unusual HTTP methods count as ``OTHER``; fallback reasons are reduced to a
fixed vocabulary. No label carries a recipient, a token, a user agent or an address.

Several gunicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory in
the environment of the gunicorn master, before anything imports ``prometheus_client`` (the
library picks its storage at import). Each worker then writes its counts to memory-mapped files
there and ``/metrics`` adds up every worker's files, whichever worker answers. Clear the
directory before the workers start (``prepare_multiprocess_dir``) and report each dead worker
(``mark_worker_dead`` from gunicorn's ``child_exit`` hook). Without the variable, counts live in
the process and ``/metrics`` shows that process only.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Literal

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import generate_latest

EXTENSION = "blanco.metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

CacheResult = Literal["hit_local", "hit_redis", "miss"]

FALLBACK_REASONS = frozenset(
    {
        "redis",
        "error",
        "render_error",
        "last_resort",
        "unknown_block",
        "campaign_paused",
        "no_verified_recipient",
        "unknown_recipient",
        "no_consent",
        "no_variant_matched",
        "timeout",
    }
)
OTHER = "other"
FALLBACK_VARIANT = "_fallback"  # the label of "no variant" (as in models.measurement.stats)
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Seconds. Open-time answers from cache take about a millisecond; the design targets are 5 ms for
# a cold banner render and 80 ms for a cold 60-frame countdown.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RENDER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5)

_G_START = "blanco_metrics_start"
_G_COUNTED = "blanco_metrics_counted"
_NOT_WORD = re.compile(r"[^a-z0-9]+")

bp = Blueprint("metrics", __name__)


def fallback_label(reason: str) -> str:
    """``reason`` in the fixed vocabulary: ``"redis: ConnectionError"`` → ``"redis"``."""
    head = reason.split(":", 1)[0].strip().lower()
    label = _NOT_WORD.sub("_", head).strip("_")
    return label if label in FALLBACK_REASONS else OTHER


def route_label(req: Request) -> str:
    """The request's URL rule (bounded), never its path or query string."""
    if req.url_rule is None:
        return UNMATCHED_ROUTE
    return re.sub(r"<(?:[^<>]*:)?(\w+)>", r"<\1>", req.url_rule.rule)


def method_label(method: str) -> str:
    """The HTTP method, or ``"OTHER"`` for anything non-standard a client made up."""
    return method if method in HTTP_METHODS else OTHER_METHOD


class Metrics:
    """The app's metrics, on a registry of its own. Recording never raises on valid labels."""

    def __init__(self, *, multiprocess: bool | None = None) -> None:
        if multiprocess is None:
            multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "blanco_http_requests_total",
            "HTTP requests answered, by URL rule, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "blanco_http_request_duration_seconds",
            "Time to answer an HTTP request, by URL rule.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.renders = Counter(
            "blanco_renders_total",
            "Images rendered (cache misses), by block type.",
            ["block_type"],
            registry=r,
        )
        self.render_seconds = Histogram(
            "blanco_render_seconds",
            "Time to render and encode one image, by block type.",
            ["block_type"],
            buckets=RENDER_BUCKETS,
            registry=r,
        )
        self.render_cache = Counter(
            "blanco_render_cache_total",
            "Render cache lookups: hit_local, hit_redis or miss.",
            ["result"],
            registry=r,
        )
        self.decisions = Counter(
            "blanco_decisions_total",
            "Decisions made at open time, by campaign, block and variant (_fallback: none).",
            ["campaign", "block", "variant"],
            registry=r,
        )
        self.fallbacks = Counter(
            "blanco_fallbacks_total", "Fallback content served, by reason.", ["reason"], registry=r
        )
        self.redis_errors = Counter(
            "blanco_redis_errors_total",
            "Failed Redis calls, by operation.",
            ["operation"],
            registry=r,
        )
        self.events_lost = Counter(
            "blanco_events_lost_total",
            "Open or click events that could not be recorded.",
            ["event"],
            registry=r,
        )

    def observe_render(self, block_type: str, seconds: float) -> None:
        """Count one render of ``block_type`` that took ``seconds``."""
        self.renders.labels(block_type).inc()
        self.render_seconds.labels(block_type).observe(seconds)

    def cache(self, result: CacheResult) -> None:
        """Count one render cache lookup."""
        self.render_cache.labels(result).inc()

    def decision(self, campaign: str, block: str, variant: str | None) -> None:
        """Count one decision; ``variant=None`` is the block's fallback."""
        self.decisions.labels(campaign, block, variant or FALLBACK_VARIANT).inc()

    def fallback(self, reason: str) -> None:
        """Count one fallback; ``reason`` is reduced to the fixed vocabulary."""
        self.fallbacks.labels(fallback_label(reason)).inc()

    def redis_error(self, operation: str) -> None:
        """Count one failed Redis call; ``operation`` is a constant such as ``"load"``."""
        self.redis_errors.labels(operation).inc()

    def event_lost(self, event: str) -> None:
        """Count one event (``"open"``, ``"click"``) that could not be recorded."""
        self.events_lost.labels(event).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """Count one answered request and, when known, its duration."""
        self.http_requests.labels(route, method, str(status)).inc()
        if seconds is not None:
            self.http_request_duration.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition: this registry, or every worker's files in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def metrics() -> Metrics:
    """The current app's metrics."""
    found: Metrics = current_app.extensions[EXTENSION]
    return found


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus scrape endpoint (text exposition format)."""
    response = Response(metrics().exposition(), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def install_request_metrics(app: Flask, metrics_: Metrics) -> None:
    """Time and count every request of ``app`` by URL rule, method and status."""

    def start() -> None:
        g.setdefault(_G_START, time.perf_counter())

    def count(status: int) -> None:
        if g.get(_G_COUNTED):
            return
        setattr(g, _G_COUNTED, True)
        started: float | None = g.get(_G_START)
        seconds = None if started is None else time.perf_counter() - started
        metrics_.observe_request(
            route_label(request), method_label(request.method), status, seconds
        )

    def after(response: Response) -> Response:
        count(response.status_code)
        return response

    def teardown(error: BaseException | None) -> None:
        count(500)  # only when no response got as far as ``after`` (a failing after_request)

    # First, so that the time includes the other before_request hooks.
    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(after)
    app.teardown_request(teardown)


def install_metrics(app: Flask) -> Metrics:
    """Create the app's ``Metrics``, time its requests and serve ``/metrics``; idempotent."""
    existing: Metrics | None = app.extensions.get(EXTENSION)
    if existing is not None:
        return existing
    created = Metrics()
    app.extensions[EXTENSION] = created
    install_request_metrics(app, created)
    app.register_blueprint(bp)
    return created


def prepare_multiprocess_dir() -> Path | None:
    """Create the multiprocess directory and remove a previous run's files (master, pre-fork)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if not configured:
        return None
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess collector that worker ``pid`` exited (gunicorn ``child_exit``)."""
    if os.environ.get(MULTIPROC_ENV):
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
