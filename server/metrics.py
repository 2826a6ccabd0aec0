"""Prometheus metrics: one ``Metrics`` per app, request timing and the ``/metrics`` route.

``install_metrics(app)`` (called by the factory) builds the app's ``Metrics`` on its own
``CollectorRegistry``, never the process-wide default one, so several apps in one process (the
tests) keep separate counts. It is kept in ``app.extensions["blanco.metrics"]``.

Labels stay bounded: requests are labelled by their Flask URL rule (``/i/<campaign_id>/...``),
never by the raw path; unusual HTTP methods count as ``OTHER``; fallback reasons are reduced to a
fixed vocabulary. No label carries a recipient, a token, a user agent or an address.

Recording is cheap: each ``Metrics`` method finds its labelled child in a dict (asking the
library with ``counter.labels(...)`` is slow) and hands the count to the app's ``Tally``
(``server.metrics_tally``), which passes it on in bulk within a second (and before every
scrape); the request counting is one WSGI wrapper around the app (``RequestMetrics``), not Flask
hooks. A path that answers without Flask (a lean WSGI route) counts its requests with
``Metrics.count_request``, as the wrapper does.

Several gunicorn workers: ``enable_multiprocess(data_dir)`` runs in the gunicorn master before
the workers fork (``blanco serve``, ``blanco demo`` and ``gunicorn.conf.py`` call it; there is
nothing to set). It empties ``<data_dir>/metrics`` (or ``PROMETHEUS_MULTIPROC_DIR`` when that is
set), points the workers at it, and switches ``prometheus_client`` to its multiprocess storage:
each worker writes its counts to memory-mapped files there and ``/metrics`` adds up every
worker's files, whichever worker answers, those of exited workers included (counters never go
back). gunicorn's ``child_exit`` hook reports each exited worker (``mark_worker_dead``), which
drops its live gauges. Without it (tests, ``flask run``), counts live in the process and
``/metrics`` shows that process only.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from flask import Blueprint, Flask, Request, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import generate_latest

from models.process_id import current_pid
from server.metrics_tally import Tally

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION = "blanco.metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_FOLDER = "metrics"
"""The folder under the data folder where gunicorn workers keep their counts."""

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

CHILDREN_KEPT = 10_000
"""At most this many labelled children are remembered per method; past it (a label fed from
something unbounded), each call asks the library again: slower, but memory stays bounded."""

_NOT_WORD = re.compile(r"[^a-z0-9]+")
_CONVERTER = re.compile(r"<(?:[^<>]*:)?(\w+)>")
_WERKZEUG_REQUEST = "werkzeug.request"  # where werkzeug keeps the request of a WSGI environ

bp = Blueprint("metrics", __name__)

Key = TypeVar("Key", bound=Hashable)
Child = TypeVar("Child")


def fallback_label(reason: str) -> str:
    """``reason`` in the fixed vocabulary: ``"redis: ConnectionError"`` → ``"redis"``."""
    head = reason.split(":", 1)[0].strip().lower()
    label = _NOT_WORD.sub("_", head).strip("_")
    return label if label in FALLBACK_REASONS else OTHER


@functools.lru_cache(maxsize=1024)
def rule_label(rule: str) -> str:
    """A URL rule without its converters: ``/i/<string:campaign_id>`` → ``/i/<campaign_id>``."""
    return _CONVERTER.sub(r"<\1>", rule)


def route_label(req: Request) -> str:
    """The request's URL rule (bounded), never its path or query string."""
    return UNMATCHED_ROUTE if req.url_rule is None else rule_label(req.url_rule.rule)


def method_label(method: str) -> str:
    """The HTTP method, or ``"OTHER"`` for anything non-standard a client made up."""
    return method if method in HTTP_METHODS else OTHER_METHOD


class Children(dict[Key, Child]):
    """Labelled children (or their bound methods) by label values, made on first use by
    ``make`` and kept (up to ``CHILDREN_KEPT``): a hit is one dict lookup."""

    def __init__(self, make: Callable[[Key], Child]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: Key) -> Child:
        made = self._make(key)
        if len(self) < CHILDREN_KEPT:
            self[key] = made
        return made


def multiprocess_enabled() -> bool:
    """Whether this process keeps its counts in the multiprocess folder."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The app's metrics, on a registry of its own. Recording never raises on valid labels."""

    def __init__(self, *, multiprocess: bool | None = None) -> None:
        self._multiprocess = multiprocess
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
        self.tally = Tally()
        """Counts on their way to the children above (``flush`` hands them over)."""
        self._requests: Children[tuple[str, str, int], tuple[Counter, Histogram]] = Children(
            self._request_children
        )
        self._counted: Children[tuple[str, str, int], Counter] = Children(
            lambda key: self.http_requests.labels(*key)
        )
        self._renders: Children[str, tuple[Counter, Histogram]] = Children(
            lambda block_type: (
                self.renders.labels(block_type),
                self.render_seconds.labels(block_type),
            )
        )
        self._cache: Children[str, Counter] = Children(self.render_cache.labels)
        self._decisions: Children[tuple[str, str, str | None], Counter] = Children(
            lambda key: self.decisions.labels(key[0], key[1], key[2] or FALLBACK_VARIANT)
        )
        self._fallbacks: Children[str, Counter] = Children(
            lambda reason: self.fallbacks.labels(fallback_label(reason))
        )
        self._redis_errors: Children[str, Counter] = Children(self.redis_errors.labels)
        self._events_lost: Children[str, Counter] = Children(self.events_lost.labels)

    @property
    def multiprocess(self) -> bool:
        """Whether ``/metrics`` adds up every worker's files (decided when asked, so that an app
        built before ``enable_multiprocess`` follows it)."""
        return multiprocess_enabled() if self._multiprocess is None else self._multiprocess

    def _request_children(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        route, method, status = key
        return (
            self.http_requests.labels(route, method, str(status)),
            self.http_request_duration.labels(route),
        )

    def count_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request of URL rule ``route`` (a constant, never a path) and its
        duration; ``method`` is the raw HTTP method (a made-up one counts as ``OTHER``)."""
        counter, timing = self._requests[
            route, method if method in HTTP_METHODS else OTHER_METHOD, status
        ]
        self.tally.count(counter)
        self.tally.observe(timing, seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """Count one answered request and, when known, its duration."""
        if seconds is not None:
            self.count_request(route, method, status, seconds)
        else:
            self.tally.count(self._counted[route, method_label(method), status])

    def observe_render(self, block_type: str, seconds: float) -> None:
        """Count one render of ``block_type`` that took ``seconds``."""
        counter, timing = self._renders[block_type]
        self.tally.count(counter)
        self.tally.observe(timing, seconds)

    def cache(self, result: CacheResult) -> None:
        """Count one render cache lookup."""
        self.tally.count(self._cache[result])

    def decision(self, campaign: str, block: str, variant: str | None) -> None:
        """Count one decision; ``variant=None`` is the block's fallback."""
        self.tally.count(self._decisions[campaign, block, variant])

    def fallback(self, reason: str) -> None:
        """Count one fallback; ``reason`` is reduced to the fixed vocabulary."""
        self.tally.count(self._fallbacks[reason])

    def redis_error(self, operation: str) -> None:
        """Count one failed Redis call; ``operation`` is a constant such as ``"load"``."""
        self.tally.count(self._redis_errors[operation])

    def event_lost(self, event: str) -> None:
        """Count one event (``"open"``, ``"click"``) that could not be recorded."""
        self.tally.count(self._events_lost[event])

    def flush(self) -> None:
        """Hand the counts gathered so far to the metrics (a thread does it every second)."""
        self.tally.flush()

    def exposition(self) -> bytes:
        """The text exposition: this registry, or every worker's files in multiprocess mode
        (this process's counts handed over first; other workers' within ``FLUSH_SECONDS``)."""
        self.flush()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class RequestMetrics:
    """WSGI wrapper that times and counts every request of a Flask app by URL rule, method and
    status (``Metrics.count_request``). The time runs from the call until the app starts its
    answer (headers ready, body not yet sent). An app that raises instead of answering (Flask
    propagates exceptions only in debug and testing modes) counts as 500, route ``unmatched``.

    The URL rule is read while the app starts its answer, from the request werkzeug keeps in
    the environ (Flask clears it when it finishes). A route that answers without Flask must be
    mounted outside this wrapper and count its requests itself.
    """

    def __init__(self, app: WSGIApplication, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer through the app, counting the answer when it starts."""
        started = time.perf_counter()
        counted = False

        def answer(
            line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            nonlocal counted
            if not counted:
                counted = True
                rule = getattr(environ.get(_WERKZEUG_REQUEST), "url_rule", None)
                self.metrics.count_request(
                    UNMATCHED_ROUTE if rule is None else rule_label(rule.rule),
                    environ.get("REQUEST_METHOD", ""),
                    int(line[:3]),
                    time.perf_counter() - started,
                )
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, answer)
        except BaseException:
            if not counted:
                self.metrics.count_request(
                    UNMATCHED_ROUTE,
                    environ.get("REQUEST_METHOD", ""),
                    500,
                    time.perf_counter() - started,
                )
            raise


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
    """Time and count every request of ``app`` (its WSGI app wrapped in ``RequestMetrics``)."""
    app.wsgi_app = RequestMetrics(app.wsgi_app, metrics_)  # type: ignore[method-assign]


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


def enable_multiprocess(data_dir: Path) -> Path:
    """Keep this process's counts, and those of the workers it forks, in files that every
    worker's ``/metrics`` adds up; call it in the gunicorn master before the workers fork.

    The folder is ``PROMETHEUS_MULTIPROC_DIR`` when set, else ``<data_dir>/metrics``; it is
    created and emptied of a previous run's files, and exported as ``PROMETHEUS_MULTIPROC_DIR``
    (which the workers inherit). ``prometheus_client`` picks its storage when first imported,
    so the storage of metrics created from now on is switched here. Returns the folder.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    folder = (Path(configured) if configured else data_dir / METRICS_FOLDER).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
            process_identifier=current_pid
        )
    return folder


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess collector that worker ``pid`` exited (gunicorn ``child_exit``)."""
    if multiprocess_enabled():
        prometheus_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
