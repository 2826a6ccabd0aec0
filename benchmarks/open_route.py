"""Section 1: the image route in-process, through the app's WSGI callable, against the
constant-bytes route. No HTTP server: every request replays a prebuilt environ, so the harness
costs the same few microseconds for every route."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from benchmarks.audience import first_names, store_recipients
from benchmarks.constant_route import CONSTANT_PATH
from benchmarks.harness import (
    PUBLIC_URL,
    Target,
    Timing,
    heading,
    kib,
    paragraph,
    quotient,
    ratio,
    recording_flush,
    run_series,
    services_of,
    table,
    timing_row,
    with_redis_cpu,
)
from benchmarks.targets import OPEN_P99_VS_BARE, OPEN_THROUGHPUT_VS_BARE, at_least, at_most
from models.measurement.event_stream import campaign_event_count
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.urls import TOKEN_PARAM, image_path

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

# Gmail's image proxy, the most common fetcher of email images.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
ACCEPT = "image/png,image/*;q=0.8"  # no WebP: the targets are for PNG
CACHE_HIT_RECIPIENT = "anna"  # demo recipient who gets the personalised city-trip banner
COLD_WARMUP = 20
UNBOUNDED = 10**9
COLUMNS = ("route", "requests", "req/s", "p50 ms", "p99 ms", "req/s vs (a)", "p99 vs (a)")


@dataclass(frozen=True)
class OpenRouteOptions:
    """How long section 1 measures."""

    rounds: int = 5
    seconds: float = 1.0
    warmup: int = 300
    cold: int = 400
    cold_max_seconds: float = 30.0


def prebuilt_environ(path: str, query: dict[str, str] | None = None) -> WSGIEnvironment:
    """A GET environ as an image proxy would send it, built once."""
    builder = EnvironBuilder(
        path=path,
        query_string=query,
        base_url=PUBLIC_URL,
        headers=[("User-Agent", USER_AGENT), ("Accept", ACCEPT)],
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


class _StartResponse:
    """Keeps the status and headers of the last response."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        self.status = status
        self.headers = headers
        return self._write

    @staticmethod
    def _write(data: bytes) -> None:
        """The legacy ``write`` callable; Flask never uses it."""


class WsgiReplay:
    """Replays prebuilt environs into the WSGI callable, timing each request and checking
    (outside the timed part) that it answered 200 with a PNG and no fallback."""

    def __init__(self, app: Flask, environs: Sequence[WSGIEnvironment]) -> None:
        self.app = app
        self.environs = environs
        self.problems: Counter[str] = Counter()
        self.etags: set[str] = set()
        self.body_size = 0
        self._start = _StartResponse()

    def __call__(self, index: int) -> float:
        """Send request ``index`` (cycling through the environs); return its latency."""
        environ = dict(self.environs[index % len(self.environs)])
        begin = time.perf_counter()
        iterable = self.app(environ, self._start)
        size = 0
        try:
            for chunk in iterable:
                size += len(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        latency = time.perf_counter() - begin
        self._check(size)
        return latency

    def _check(self, size: int) -> None:
        if self._start.status != "200 OK":
            self.problems[f"status {self._start.status}"] += 1
        for name, value in self._start.headers:
            if name == "X-Blanco-Fallback":
                self.problems[f"fallback ({value})"] += 1
            elif name == "ETag":
                self.etags.add(value)
            elif name == "Content-Type" and value != "image/png":
                self.problems[f"content type {value}"] += 1
        self.body_size = size


def run(app: Flask, options: OpenRouteOptions) -> list[Target]:
    """Measure the constant route, the cache-hit image route and cold renders; print them."""
    print(heading("1. Image route in-process (WSGI callable, one thread, no HTTP server)"))
    services = services_of(app)
    path = image_path(CAMPAIGN_ID, BLOCK_ID)
    constant = WsgiReplay(app, [prebuilt_environ(CONSTANT_PATH)])
    hit_token = services.signer.sign(CACHE_HIT_RECIPIENT)
    hit = WsgiReplay(app, [prebuilt_environ(path, {TOKEN_PARAM: hit_token})])
    for replay in (constant, hit):
        run_series(replay, count=options.warmup, max_seconds=10)

    events_before = campaign_event_count(services.redis, CAMPAIGN_ID)
    parts: dict[str, list[Timing]] = {"a": [], "b": []}
    for _ in range(options.rounds):
        for name, replay in (("a", constant), ("b", hit)):
            parts[name].append(
                with_redis_cpu(
                    services.redis,
                    partial(
                        run_series,
                        replay,
                        count=UNBOUNDED,
                        max_seconds=options.seconds,
                        settle=recording_flush(app),
                    ),
                )
            )
    baseline, cache_hit = Timing.merged(parts["a"]), Timing.merged(parts["b"])
    events_recorded = campaign_event_count(services.redis, CAMPAIGN_ID) - events_before

    names = first_names(COLD_WARMUP + options.cold)
    ids = store_recipients(services, "bench-cold", names)
    environs = [prebuilt_environ(path, {TOKEN_PARAM: services.signer.sign(rid)}) for rid in ids]
    run_series(WsgiReplay(app, environs[:COLD_WARMUP]), count=COLD_WARMUP, max_seconds=30)
    cold = WsgiReplay(app, environs[COLD_WARMUP:])
    cold_timing = with_redis_cpu(
        services.redis,
        partial(run_series, cold, count=options.cold, max_seconds=options.cold_max_seconds),
    )

    print(
        paragraph(
            f"{options.rounds} interleaved rounds of {options.seconds:g} s for (a) and (b); (c) is "
            f"{cold_timing.count} new recipients, one request each, so every one renders. (b) and "
            "(c) verify the token, load in one pipelined round-trip, decide, take the image from "
            "the render cache (c: render it and store it), and record the open. CPU µs/req is "
            "this process (the app), Redis µs/req the Redis server's CPU time."
        )
    )
    print(
        table(
            [*COLUMNS, "CPU µs/req", "Redis µs/req"],
            [
                timing_row(
                    f"(a) constant {kib(constant.body_size)} PNG (baseline)", baseline, baseline
                ),
                timing_row(f"(b) image, cache hit ({kib(hit.body_size)})", cache_hit, baseline),
                timing_row("(c) image, cold 600×200 render", cold_timing, baseline),
            ],
        )
    )
    problems = constant.problems + hit.problems + cold.problems
    verdict = f"PROBLEMS: {dict(problems)}" if problems else "all 200 image/png, no fallback"
    print(
        paragraph(
            f"checks: {events_recorded:,} open events recorded for {cache_hit.count:,} (b) "
            f"requests; {len(cold.etags)} distinct images for {cold_timing.count} (c) requests; "
            f"{verdict}."
        )
    )
    print(
        paragraph(
            "note: in-process figures leave out HTTP parsing and sockets, which design.md's "
            "baseline (gunicorn + wrk) includes, so these ratios are harsher than the target "
            "meant; section 6 measures through gunicorn against a bare Flask app."
        )
    )
    targets = [
        Target(
            "in-process (b) cache-hit throughput vs (a)",
            ratio(quotient(cache_hit.rate, baseline.rate)),
            at_least(OPEN_THROUGHPUT_VS_BARE),
            quotient(cache_hit.rate, baseline.rate) >= OPEN_THROUGHPUT_VS_BARE,
        ),
        Target(
            "in-process (b) cache-hit p99 vs (a) p99",
            ratio(quotient(cache_hit.p99, baseline.p99)),
            at_most(OPEN_P99_VS_BARE),
            cache_hit.p99 <= OPEN_P99_VS_BARE * baseline.p99,
        ),
    ]
    for target in targets:
        print(target.line())
    return targets
