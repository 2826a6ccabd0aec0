"""``python -m benchmarks.recording [--no-http]``: what recording an open costs the image route.

Recording is ``OpenTime._record``: one pipelined write that stores the decision, appends the open
to the campaign's event stream (XADD) and counts it in the stats counters. In interleaved rounds
of one run this times (a) the image route for a known recipient whose image is in the render
cache, recording the open as in production, and (b) the same requests with recording switched
off (``image_for(record=False)``, through the benchmark app's ``bench-record=0`` switch in
``benchmarks/http_app.py``): in-process (the WSGI callable, and ``OpenTime.image_for`` alone),
then through gunicorn over HTTP. The cost is (b − a) / b of throughput; the target is under 20%.
Uses REDIS_URL, database 14 (flushed at start and end), or an embedded Redis in a temporary
folder. Always exits 0 once it has run.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import redis
from flask import Flask

from benchmarks.harness import (
    Target,
    Timing,
    bench_redis,
    build_app,
    environment,
    free_port,
    heading,
    kib,
    load_average,
    paragraph,
    quotient,
    run_series,
    services_of,
    table,
    timing_row,
    with_redis_cpu,
)
from benchmarks.http_app import (
    RECORD_PARAM,
    RECORDING_SWITCH_ENV,
    install_recording_switch,
    remove_recording_switch,
)
from benchmarks.http_load import (
    GunicornProcess,
    HttpOptions,
    Load,
    drive,
    gunicorn_env,
    load_row,
)
from benchmarks.open_route import (
    ACCEPT,
    CACHE_HIT_RECIPIENT,
    UNBOUNDED,
    USER_AGENT,
    WsgiReplay,
    prebuilt_environ,
)
from benchmarks.targets import RECORDING_COST
from models.email_clients import classify_open_request
from models.measurement.event_stream import campaign_event_count
from server.demo.data import BLOCK_ID, CAMPAIGN_ID, load_demo
from server.open.core import OpenCore
from server.open.routes import CORE
from server.services import Services
from server.tokens import Identity
from server.urls import TOKEN_PARAM, image_path, image_url

T = TypeVar("T")
TARGET_COST = RECORDING_COST
WANTED = f"< {TARGET_COST:.0%}"
COLUMNS = ("route", "requests", "req/s", "p50 ms", "p99 ms", "req/s vs (b)", "p99 vs (b)")
HTTP_OPTIONS = HttpOptions(requests=12000, rounds=8, time_limit=60.0)


@dataclass(frozen=True)
class RecordingOptions:
    """How long the in-process part measures."""

    rounds: int = 6
    seconds: float = 0.5
    warmup: int = 300


def recording_cost(recording: Timing, without: Timing) -> float:
    """The share of throughput that recording costs: (b − a) / b."""
    return quotient(without.rate - recording.rate, without.rate)


def cost_line(cost: float, recording: Sequence[Timing], without: Sequence[Timing]) -> str:
    """The headline, ``recording cost: X% of throughput (target < 20%)``, and the spread of
    the cost over the rounds (round i of ``recording`` against round i of ``without``)."""
    rounds = sorted(recording_cost(a, b) for a, b in zip(recording, without, strict=True))
    spread = f"; per round {rounds[0]:.0%} to {rounds[-1]:.0%}" if len(rounds) > 1 else ""
    return f"  recording cost: {cost:.1%} of throughput (target {WANTED}){spread}"


def cpu_cost(recording_cpu: float, without_cpu: float) -> float:
    """The share of throughput recording would cost if CPU per request alone decided it."""
    return 1 - quotient(without_cpu, recording_cpu)


def interleaved(rounds: int, series: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every series once per round, in reverse order every other round so that neither
    profits from coming first; each series' results in round order."""
    parts: dict[str, list[T]] = {name: [] for name in series}
    names = list(series)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            parts[name].append(series[name]())
    return parts


class EventCount:
    """Open events appended to the demo campaign's stream while each named series ran
    (counted outside the timed part)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.added: Counter[str] = Counter()

    def during(self, name: str, series: Callable[[], T]) -> Callable[[], T]:
        """``series``, counting the events it appends under ``name``."""

        def counted() -> T:
            before = campaign_event_count(self.client, CAMPAIGN_ID)
            result = series()
            self.added[name] += self._settled_length() - before
            return result

        return counted

    def _settled_length(self, quiet: float = 0.2, limit: float = 5.0) -> int:
        """The stream's length once no event has arrived for ``quiet`` seconds (gunicorn
        workers write their last records in the background after the responses)."""
        length = campaign_event_count(self.client, CAMPAIGN_ID)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = campaign_event_count(self.client, CAMPAIGN_ID)
            if now == length:
                break
            length = now
        return length

    def problems(self, recorded: str, recorded_count: int, unrecorded: str) -> list[str]:
        """What is wrong with the counts: one event per recorded request, none otherwise."""
        found = []
        if self.added[recorded] != recorded_count:
            found.append(f"{self.added[recorded]:,} events for {recorded_count:,} ({recorded})")
        if self.added[unrecorded]:
            found.append(f"{self.added[unrecorded]:,} events while ({unrecorded}) did not record")
        return found


class DirectCalls:
    """``OpenTime.image_for`` for the cache-hit recipient, as the image route calls it once the
    token is verified; times each call and checks the answer outside the timed part."""

    def __init__(self, open_time: OpenCore, recipient_id: str, *, record: bool) -> None:
        self.open_time = open_time
        self.recipient_id = recipient_id
        self.record = record
        self.client = classify_open_request("GET", {"User-Agent": USER_AGENT, "Accept": ACCEPT})
        self.problems: Counter[str] = Counter()
        self.etags: set[str] = set()

    def __call__(self, index: int) -> float:
        """One call; its latency."""
        begin = time.perf_counter()
        answer = self.open_time.block_image(
            CAMPAIGN_ID,
            BLOCK_ID,
            Identity(self.recipient_id),
            self.client,
            self.open_time.services.clock(),
            record=self.record,
        )
        latency = time.perf_counter() - begin
        if answer.fallback_reason:
            self.problems[f"fallback ({answer.fallback_reason})"] += 1
        elif not answer.personalised:
            self.problems["not personalised"] += 1
        self.etags.add(answer.etag)
        return latency


def _verdict(problems: Counter[str], etags: set[str], event_problems: list[str]) -> str:
    found = [*(f"{n} × {what}" for what, n in problems.items()), *event_problems]
    if len(etags) > 1:
        found.append(f"{len(etags)} different images")
    return "PROBLEMS: " + "; ".join(found) if found else ""


def run(app: Flask, options: RecordingOptions) -> list[Target]:
    """Time the cache-hit image route in-process with and without recording; print it."""
    print(heading("4. Recording cost in-process (WSGI callable, one thread, no HTTP server)"))
    services = services_of(app)
    original = install_recording_switch(app)
    try:
        return _run_in_process(app, services, original, options)
    finally:
        remove_recording_switch(app, original)


def _run_in_process(
    app: Flask, services: Services, open_time: OpenCore, options: RecordingOptions
) -> list[Target]:
    path = image_path(CAMPAIGN_ID, BLOCK_ID)
    token = services.signer.sign(CACHE_HIT_RECIPIENT)
    replays = {
        name: WsgiReplay(app, [prebuilt_environ(path, {TOKEN_PARAM: token, RECORD_PARAM: flag})])
        for name, flag in (("a", "1"), ("b", "0"))
    }
    calls = {
        "direct a": DirectCalls(open_time, CACHE_HIT_RECIPIENT, record=True),
        "direct b": DirectCalls(open_time, CACHE_HIT_RECIPIENT, record=False),
    }
    requests: dict[str, Callable[[int], float]] = {**replays, **calls}
    switched: OpenCore = app.extensions[CORE]  # the replays' core: its recorder is its own

    def flush() -> bool:
        """Write what both recorders still hold (replays and direct calls)."""
        return all([switched.recorder.flush(), open_time.recorder.flush()])

    for request in requests.values():
        run_series(request, count=options.warmup, max_seconds=10)
    flush()  # the warm-up's records are not counted in the first series

    events = EventCount(services.redis)
    parts = interleaved(
        options.rounds,
        {
            name: events.during(
                name,
                partial(
                    with_redis_cpu,
                    services.redis,
                    partial(
                        run_series,
                        request,
                        count=UNBOUNDED,
                        max_seconds=options.seconds,
                        settle=flush,
                    ),
                ),
            )
            for name, request in requests.items()
        },
    )
    merged = {name: Timing.merged(timings) for name, timings in parts.items()}
    route_a, route_b = merged["a"], merged["b"]
    direct_a, direct_b = merged["direct a"], merged["direct b"]
    cost = recording_cost(route_a, route_b)
    direct_cost = recording_cost(direct_a, direct_b)

    print(
        paragraph(
            f"{options.rounds} interleaved rounds of {options.seconds:g} s per series, one request "
            "at a time. (a) and (b) are the same image request for a known recipient whose image "
            "is in the render cache (verify the token, load in one pipelined round-trip, decide, "
            "cached bytes); (a) also records the open (store the decision, XADD the event, count "
            f"it: one pipelined write), (b) does not (benchmark-only `{RECORD_PARAM}=0`). The "
            "last two rows call OpenTime.image_for alone (no Flask, no token check). CPU µs/req "
            "is this process, Redis µs/req the Redis server's CPU time."
        )
    )
    size = replays["a"].body_size
    print(
        table(
            [*COLUMNS, "CPU µs/req", "Redis µs/req"],
            [
                timing_row(f"(a) image route, records ({kib(size)})", route_a, route_b),
                timing_row("(b) image route, no recording", route_b, route_b),
                timing_row("(a) image_for alone, records", direct_a, direct_b),
                timing_row("(b) image_for alone, no recording", direct_b, direct_b),
            ],
        )
    )
    problems = replays["a"].problems + replays["b"].problems
    direct_problems = calls["direct a"].problems + calls["direct b"].problems
    verdict = _verdict(
        problems + direct_problems,
        set().union(*(r.etags for r in replays.values()), *(c.etags for c in calls.values())),
        [
            *events.problems("a", route_a.count, "b"),
            *events.problems("direct a", direct_a.count, "direct b"),
        ],
    )
    print(
        paragraph(
            f"checks: {verdict or 'all 200 image/png, one image, no fallback'}; "
            f"{events.added['a'] + events.added['direct a']:,} open events recorded for "
            f"{route_a.count + direct_a.count:,} (a) requests, "
            f"{events.added['b'] + events.added['direct b']:,} for "
            f"{route_b.count + direct_b.count:,} (b) requests."
        )
    )
    route_cpu = cpu_cost(_cpu_per_request(route_a), _cpu_per_request(route_b))
    print(
        paragraph(
            f"recording adds {_extra_us(route_a, route_b)} µs per request to the route "
            f"({_extra_us(direct_a, direct_b)} µs to image_for alone, which is "
            f"{direct_cost:.1%} of its throughput); by CPU per request (this process + Redis) "
            f"it costs the route {route_cpu:.1%}."
        )
    )
    print(cost_line(cost, parts["a"], parts["b"]))
    target = Target(
        "in-process recording cost, (b − a) / b of req/s", f"{cost:.1%}", WANTED, cost < TARGET_COST
    )
    print(target.line())
    return [target]


def _cpu_per_request(timing: Timing) -> float:
    return quotient(timing.cpu + timing.redis_cpu, timing.count)


def _extra_us(recording: Timing, without: Timing) -> str:
    """The time per request that recording adds, from the throughputs, in µs."""
    extra = (quotient(1, recording.rate) - quotient(1, without.rate)) * 1e6
    return "n/a" if math.isnan(extra) else f"{extra:,.0f}"


def _http_cpu_per_request(load: Load) -> float:
    timing = load.timing
    return quotient(timing.cpu + timing.redis_cpu + load.client_cpu, timing.count)


def run_http(
    services: Services, redis_url: str, signing_key: str, workdir: Path, options: HttpOptions
) -> list[Target]:
    """Start gunicorn with the recording switch, drive (a) and (b) in interleaved rounds."""
    print(heading("5. Recording cost through gunicorn over HTTP on 127.0.0.1"))
    port = free_port()
    env = gunicorn_env(
        redis_url,
        signing_key,
        port,
        workdir / "gunicorn-recording",
        options,
        {RECORDING_SWITCH_ENV: "1"},
    )
    url = image_url("", CAMPAIGN_ID, BLOCK_ID, services.signer.sign(CACHE_HIT_RECIPIENT))
    routes = {"a": f"{url}&{RECORD_PARAM}=1", "b": f"{url}&{RECORD_PARAM}=0"}
    share = max(1, options.requests // options.rounds)
    limit = options.time_limit / options.rounds
    events = EventCount(services.redis)
    log_path = workdir / "gunicorn-recording.log"
    with GunicornProcess(env, port, log_path, options.start_timeout) as server:

        def load(path: str, requests: int, time_limit: float) -> Load:
            return drive(
                server,
                services.redis,
                path,
                requests=requests,
                connections=options.connections,
                time_limit=time_limit,
            )

        for path in routes.values():
            load(path, options.warmup, 10)
        parts = interleaved(
            options.rounds,
            {
                name: events.during(name, partial(load, path, share, limit))
                for name, path in routes.items()
            },
        )
    recording, without = Load.merged(parts["a"]), Load.merged(parts["b"])
    cost = recording_cost(recording.timing, without.timing)
    print(
        paragraph(
            f"gunicorn gthread, {options.workers} workers × {options.threads} threads; "
            f"{options.connections} keep-alive connections, one Python thread each; "
            f"{options.rounds} interleaved rounds of up to {share} requests or {limit:g} s per "
            f"route. (a) and (b) are the same cache-hit image request, (b) with `{RECORD_PARAM}=0`"
            " so that the open is not recorded. Server CPU µs/req is gunicorn's processes, "
            "Redis µs/req the Redis server's; client CPU is the load generator's share of one "
            "core (all share the same cores)."
        )
    )
    print(
        table(
            [*COLUMNS, "server CPU µs/req", "Redis µs/req", "client CPU"],
            [
                load_row("(a) image, cache hit, records", recording, without),
                load_row("(b) image, cache hit, no recording", without, without),
            ],
        )
    )
    verdict = _verdict(
        recording.problems + without.problems,
        set(),
        events.problems("a", recording.timing.count, "b"),
    )
    print(
        paragraph(
            f"checks: {verdict or 'all 200, no fallback'}; {events.added['a']:,} open events "
            f"recorded for {recording.timing.count:,} (a) requests, {events.added['b']:,} for "
            f"{without.timing.count:,} (b) requests."
        )
    )
    by_cpu = cpu_cost(_http_cpu_per_request(recording), _http_cpu_per_request(without))
    print(
        paragraph(
            f"recording adds {_extra_us(recording.timing, without.timing)} µs of wall time per "
            f"request at this concurrency; by CPU per request (gunicorn + Redis + load generator, "
            f"which share the cores) it costs {by_cpu:.1%} of throughput, a figure that other load "
            "on the machine skews less than req/s."
        )
    )
    print(cost_line(cost, [p.timing for p in parts["a"]], [p.timing for p in parts["b"]]))
    target = Target(
        "HTTP recording cost, (b − a) / b of req/s", f"{cost:.1%}", WANTED, cost < TARGET_COST
    )
    print(target.line())
    return [target]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recording",
        description="What recording an open (decision, event, counters) costs the image route's "
        "throughput, in-process and through gunicorn; target < 20%. Uses REDIS_URL, database 14 "
        "(flushed at start and end), or an embedded Redis in a temporary folder.",
    )
    inprocess = RecordingOptions()
    parser.add_argument(
        "--rounds", type=int, default=inprocess.rounds, help="interleaved in-process rounds"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=inprocess.seconds,
        help="seconds per series per in-process round",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn part")
    parser.add_argument(
        "--http-rounds", type=int, default=HTTP_OPTIONS.rounds, help="interleaved HTTP rounds"
    )
    parser.add_argument(
        "--http-requests",
        type=int,
        default=HTTP_OPTIONS.requests,
        help="requests per route over all HTTP rounds",
    )
    parser.add_argument(
        "--http-connections",
        type=int,
        default=HTTP_OPTIONS.connections,
        help="keep-alive connections (one thread each)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the figures and the targets, and exit 0."""
    args = parse_args(argv)
    started = time.perf_counter()
    targets: list[Target] = []
    print(f"Blanco: the cost of recording opens (target: {WANTED} of the route's throughput)")
    with (
        tempfile.TemporaryDirectory(prefix="blanco-bench-") as folder,
        bench_redis(Path(folder)) as bench,
    ):
        print(environment(bench.origin, bench.url, bench.version), flush=True)
        signing_key = secrets.token_urlsafe(48)
        app = build_app(bench.url, signing_key, Path(folder))
        services = services_of(app)
        try:
            load_demo(services)
            targets += run(app, RecordingOptions(rounds=args.rounds, seconds=args.seconds))
            sys.stdout.flush()
            if not args.no_http:
                http = replace(
                    HTTP_OPTIONS,
                    rounds=args.http_rounds,
                    requests=args.http_requests,
                    connections=args.http_connections,
                )
                targets += run_http(services, bench.url, signing_key, Path(folder), http)
        finally:
            services.redis.close()
            services.redis_bytes.close()
    print(heading("Summary"))
    for target in targets:
        print(target.line())
    print(f"  ran in {time.perf_counter() - started:.1f} s; load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
