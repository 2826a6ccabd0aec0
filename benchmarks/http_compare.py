"""Section 6: Blanco's cache-hit open against a bare Flask app, through gunicorn, driven by wrk.

Four sides, each under the same gunicorn shape (``-k gthread -w 2 --threads 4``, keep-alive, on
127.0.0.1; Blanco's with its own ``gunicorn.conf.py`` too, which gives each worker a listening
socket of its own) and driven by the same ``wrk -t2 -c8 -d<seconds>s --latency``, in
interleaved rounds (bare, Blanco, slot, constant, bare, Blanco, ...):

* **bare**: ``benchmarks.bare_app:app``, Flask alone answering a constant ~21 KB PNG: the
  baseline of the targets;
* **Blanco**: the cache-hit open of a demo recipient's image URL (token, one Redis read, decide,
  the cached bytes, recording in the background, metrics) on the benchmark Redis;
* **slot**: the re-open of a newsletter slot of the demo's send (the stored ranking read back
  in the same round trip, the card from the worker's memory);
* **constant**: Blanco's own constant route, the same PNG from inside Blanco's app. It pays
  Blanco's hooks too, so as a baseline it flatters Blanco: it is printed for reference only.

CPU per request is read from ``/proc`` (the gunicorn master and its workers) and from Redis's
``INFO cpu``, before and after each round.
"""

from __future__ import annotations

import datetime as dt
import http.client
import math
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import redis

from benchmarks.bare_app import PATH as BARE_PATH
from benchmarks.constant_route import CONSTANT_PATH
from benchmarks.harness import (
    Target,
    free_port,
    heading,
    load_average,
    ms,
    paragraph,
    quotient,
    ratio,
    redis_cpu_seconds,
    table,
)
from benchmarks.http_load import APP, HOST, ROOT, GunicornProcess, HttpOptions, gunicorn_env
from benchmarks.open_route import ACCEPT, CACHE_HIT_RECIPIENT, USER_AGENT
from benchmarks.slot_route import SLOT, demo_send_id
from benchmarks.targets import (
    GUNICORN_THREADS,
    GUNICORN_WORKERS,
    OPEN_P99_VS_BARE,
    OPEN_THROUGHPUT_VS_BARE,
    SLOT_REOPEN_VS_BARE,
    at_least,
    at_most,
)
from benchmarks.wrk import WrkResult, find_wrk, run_wrk, wrk_command
from models.storage import keys
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.metrics_tally import FLUSH_SECONDS
from server.services import Services
from server.urls import SEND_PARAM, TOKEN_PARAM, image_url, slot_image_path

HEADERS = (("User-Agent", USER_AGENT), ("Accept", ACCEPT))
GUNICORN_SHAPE = (
    *("-k", "gthread", "-w", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS)),
    *("--keep-alive", "5"),
)
BARE_APP = "benchmarks.bare_app:app"
CHECKS = 8
"""Requests sent before measuring (one connection each, to reach every worker) to check the
answers wrk does not look into: 200, ``image/png``, no ``X-Blanco-Fallback``."""
WRK_MISSING = "wrk missing: cannot measure HTTP"
IMAGE_ROUTES = ("/i/<campaign_id>/<block_id>.<extension>", "/s/<campaign_id>/<slot>.<extension>")
"""The URL rules of the block and slot images (Blanco's open sides)."""
OPEN_SIDES = ("blanco", "slot")


@dataclass(frozen=True)
class CompareOptions:
    """The rounds of section 6."""

    rounds: int = 3
    seconds: float = 8.0
    warmup_seconds: float = 1.0
    start_timeout: float = 30.0
    install_wrk: bool = True


@dataclass(frozen=True)
class Side:
    """One thing measured: the server that answers it, its path and its label."""

    key: str
    label: str
    server: str
    path: str


@dataclass(frozen=True)
class Measured:
    """One side in one round: wrk's figures, the CPU gunicorn (master + workers) and Redis used
    meanwhile (seconds), and the 1-minute load average at the end of the round."""

    side: Side
    round: int
    wrk: WrkResult
    server_cpu: float
    redis_cpu: float
    load: str

    def per_request_us(self, seconds: float) -> float:
        """CPU ``seconds`` per completed request, in microseconds."""
        return quotient(seconds, self.wrk.requests) * 1e6

    @property
    def server_us(self) -> float:
        """gunicorn's CPU per request, µs."""
        return self.per_request_us(self.server_cpu)

    @property
    def redis_us(self) -> float:
        """Redis's CPU per request, µs."""
        return self.per_request_us(self.redis_cpu)

    @property
    def wrk_share(self) -> float:
        """wrk's CPU, as a share of one core over the round."""
        return quotient(self.wrk.cpu, self.wrk.seconds)


@dataclass(frozen=True)
class Spread:
    """The median and range of one figure over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (NaN when there are none)."""
        kept = [v for v in values if not math.isnan(v)]
        if not kept:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(kept), min(kept), max(kept))

    def ratios(self) -> str:
        """``0.52× (0.48–0.55×)``."""
        if math.isnan(self.median):
            return "n/a"
        return f"{ratio(self.median)} ({self.low:.2f}–{ratio(self.high)})"

    def number(self, digits: int = 0) -> str:
        """``1,234 (1,100–1,300)``."""
        return (
            f"{self.median:,.{digits}f} ({self.low:,.{digits}f}–{self.high:,.{digits}f})"
            if not math.isnan(self.median)
            else "n/a"
        )


@dataclass(frozen=True)
class Checked:
    """What the checks before measuring saw for one side."""

    problems: tuple[str, ...]
    body_size: int


def describe(options: CompareOptions) -> str:
    """How the section measures, for its report."""
    load = " ".join(wrk_command("wrk", "<url>", options.seconds)[:5])
    return (
        f"gunicorn {' '.join(GUNICORN_SHAPE)} for every side (Blanco's also with its "
        "gunicorn.conf.py, so a listening socket per worker; the bare app with one shared "
        f"socket, gunicorn's default), on 127.0.0.1; load: `{load}` with an image proxy's "
        f"User-Agent and Accept; {options.rounds} interleaved rounds of {options.seconds:g} s per "
        f"side, after {options.warmup_seconds:g} s of warm-up each. Blanco's open reads the demo "
        "data from the benchmark Redis."
    )


def bind_args(port: int) -> tuple[str, ...]:
    """gunicorn's arguments for 127.0.0.1:``port``, quiet, with no control socket."""
    return ("-b", f"{HOST}:{port}", "--no-control-socket", "--log-level", "warning")


def sides(services: Services) -> tuple[Side, ...]:
    """Bare, Blanco, slot, constant: the order of every round."""
    token = services.signer.sign(CACHE_HIT_RECIPIENT)
    slot_query = urlencode({TOKEN_PARAM: token, SEND_PARAM: demo_send_id(services)})
    return (
        Side("bare", "bare Flask, constant PNG (baseline)", "bare", BARE_PATH),
        Side(
            "blanco",
            "Blanco open, cache hit",
            "blanco",
            image_url("", CAMPAIGN_ID, BLOCK_ID, token),
        ),
        Side(
            "slot",
            "Blanco newsletter slot re-open (the stored ranking read back, the card from cache)",
            "blanco",
            f"{slot_image_path(CAMPAIGN_ID, SLOT)}?{slot_query}",
        ),
        Side(
            "constant",
            "Blanco's constant route — shares Blanco's overhead, flatters",
            "blanco",
            CONSTANT_PATH,
        ),
    )


def check_answers(port: int, path: str, *, count: int = CHECKS) -> Checked:
    """GET ``path`` ``count`` times, each on a new connection; what was wrong, if anything."""
    problems: list[str] = []
    size = 0
    for _ in range(count):
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            connection.request("GET", path, headers=dict(HEADERS))
            response = connection.getresponse()
            size = len(response.read())
            if response.status != 200:
                problems.append(f"status {response.status}")
            if response.getheader("Content-Type") != "image/png":
                problems.append(f"content type {response.getheader('Content-Type')}")
            if fallback := response.getheader("X-Blanco-Fallback"):
                problems.append(f"X-Blanco-Fallback: {fallback}")
        except (OSError, http.client.HTTPException) as exc:
            problems.append(type(exc).__name__)
        finally:
            connection.close()
    return Checked(tuple(sorted(set(problems))), size)


@dataclass(frozen=True)
class Counts:
    """Blanco's own counts at one moment: 200 answers of the image route, fallbacks served and
    events lost (from ``/metrics``, over every worker), and opens recorded (from Redis)."""

    images: float
    fallbacks: float
    lost: float
    opens: float


@dataclass(frozen=True)
class Verified:
    """What Blanco counted while the rounds ran, and the opens recorded once it had stopped."""

    before: Counts
    after: Counts
    opens_at_exit: float

    def summary(self, completed: int) -> str:
        """The counts against wrk's ``completed`` requests, with PROBLEM when they disagree."""
        served = self.after.images - self.before.images
        fallbacks = self.after.fallbacks - self.before.fallbacks
        lost = self.after.lost - self.before.lost
        opens = self.after.opens - self.before.opens
        recorded = self.opens_at_exit - self.before.opens
        ok = served >= completed and fallbacks == 0 and lost == 0 and recorded == served
        return (
            f"Blanco's metrics counted {served:,.0f} image answers (200) for wrk's {completed:,} "
            f"completed, {fallbacks:,.0f} fallbacks and {lost:,.0f} events lost while measuring; "
            f"opens counted in Redis (the campaign's daily counters) grew by {opens:,.0f} while "
            f"measuring, by {recorded:,.0f} once gunicorn had stopped{'' if ok else ' — PROBLEM'}"
        )


def blanco_counts(port: int, services: Services, limit: float = 6.0) -> Counts:
    """Blanco's counts once they have settled: ``/metrics`` of the gunicorn on ``port`` (each
    worker hands its counts over within ``FLUSH_SECONDS``: scraped until two scrapes that far
    apart agree) and Redis."""
    counts = _scraped(port)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(FLUSH_SECONDS + 0.1)
        again = _scraped(port)
        if again == counts:
            break
        counts = again
    return Counts(*counts, settled_opens(services))


def _scraped(port: int) -> tuple[float, float, float]:
    """Image answers (200), fallbacks and events lost, from one scrape of ``/metrics``."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    images = fallbacks = lost = 0.0
    for line in text.splitlines():
        matched = re.match(r"(blanco_\w+)(\{[^}]*\})?\s+(\S+)$", line)
        if matched is None:
            continue
        name, labels, value = matched.group(1), matched.group(2) or "", float(matched.group(3))
        image = any(route in labels for route in IMAGE_ROUTES)
        if name == "blanco_http_requests_total" and image and '"200"' in labels:
            images += value
        elif name == "blanco_fallbacks_total":
            fallbacks += value
        elif name == "blanco_events_lost_total":
            lost += value
    return images, fallbacks, lost


def settled_opens(services: Services, quiet: float = 0.2, limit: float = 5.0) -> float:
    """``counted_opens`` once no open has been added for ``quiet`` seconds: the background
    writers record the last opens after their answers went out."""
    count = counted_opens(services)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = counted_opens(services)
        if now == count:
            break
        count = now
    return count


def counted_opens(services: Services) -> float:
    """Opens recorded today for the demo campaign, from its daily counters (which, unlike its
    event streams, have no cap)."""
    day = services.clock().astimezone(dt.UTC).date().isoformat()
    total = 0
    for shard in keys.SHARDS_READ:
        counts = services.redis.hgetall(keys.stats_counts(CAMPAIGN_ID, day, shard))
        total += sum(int(n) for field, n in counts.items() if str(field).startswith("open|"))
    return float(total)


def measure(
    wrk: str,
    side: Side,
    round_: int,
    server: GunicornProcess,
    redis_client: redis.Redis,
    seconds: float,
) -> Measured:
    """One wrk run of ``side``, with the CPU gunicorn and Redis used meanwhile."""
    server_cpu, redis_cpu = server.cpu_seconds(), redis_cpu_seconds(redis_client)
    result = run_wrk(wrk, f"http://{HOST}:{server.port}{side.path}", seconds, HEADERS)
    return Measured(
        side,
        round_,
        result,
        server.cpu_seconds() - server_cpu,
        redis_cpu_seconds(redis_client) - redis_cpu,
        load_average(),
    )


def run(
    services: Services,
    redis_url: str,
    signing_key: str,
    workdir: Path,
    options: CompareOptions,
) -> list[Target]:
    """Start both gunicorns, check, warm up, measure the interleaved rounds and report."""
    title = "6. Blanco's open against a bare Flask app, through gunicorn, driven by wrk"
    print(heading(title))
    found = find_wrk(options.install_wrk)
    if found.note:
        print(paragraph(found.note + "."))
    if found.path is None:
        print(f"  {WRK_MISSING}")
        return []
    wrk = found.path
    shape = HttpOptions(workers=GUNICORN_WORKERS, threads=GUNICORN_THREADS)
    bare_port, blanco_port = free_port(), free_port()
    blanco_env = gunicorn_env(redis_url, signing_key, blanco_port, workdir / "gunicorn", shape)
    bare_env = {k: v for k, v in os.environ.items() if not k.startswith("BLANCO_")}
    bare_config = workdir / "bare.gunicorn.conf.py"  # else gunicorn reads ./gunicorn.conf.py
    bare_config.write_text("# the bare app: gunicorn's defaults and the command line only\n")
    bare_argv = ("-c", str(bare_config), *GUNICORN_SHAPE, *bind_args(bare_port), BARE_APP)
    blanco_argv = (
        "-c",
        str(ROOT / "gunicorn.conf.py"),
        *GUNICORN_SHAPE,
        *bind_args(blanco_port),
        APP,
    )
    all_sides = sides(services)
    try:
        with (
            GunicornProcess(
                bare_env,
                bare_port,
                workdir / "bare.log",
                options.start_timeout,
                argv=bare_argv,
                ready_path=BARE_PATH,
            ) as bare,
            GunicornProcess(
                blanco_env,
                blanco_port,
                workdir / "blanco.log",
                options.start_timeout,
                argv=blanco_argv,
            ) as blanco,
        ):
            servers = {"bare": bare, "blanco": blanco}
            print(paragraph(describe(options)))
            checked = {s.key: check_answers(servers[s.server].port, s.path) for s in all_sides}
            for side in all_sides:
                run_wrk(
                    wrk,
                    f"http://{HOST}:{servers[side.server].port}{side.path}",
                    options.warmup_seconds,
                    HEADERS,
                )
            rechecked = {s.key: check_answers(servers[s.server].port, s.path) for s in all_sides}
            before = blanco_counts(blanco.port, services)
            rounds: list[Measured] = []
            for round_ in range(1, options.rounds + 1):
                for side in all_sides:
                    rounds.append(
                        measure(
                            wrk,
                            side,
                            round_,
                            servers[side.server],
                            services.redis,
                            options.seconds,
                        )
                    )
            after = blanco_counts(blanco.port, services)
        problems = {
            key: sorted(set(checked[key].problems) | set(rechecked[key].problems))
            for key in checked
        }
    except RuntimeError as exc:  # gunicorn did not start, or wrk failed
        print(paragraph(f"could not measure: {exc}"))
        return []
    verified = Verified(before, after, counted_opens(services))
    return report(rounds, problems, checked, verified, options)


def _rows(rounds: Sequence[Measured]) -> list[list[str]]:
    by_round: dict[int, dict[str, Measured]] = {}
    for m in rounds:
        by_round.setdefault(m.round, {})[m.side.key] = m
    rows = []
    for m in rounds:
        bare = by_round[m.round].get("bare")
        rows.append(
            [
                f"{m.round}  {m.side.key}",
                f"{m.wrk.requests:,}",
                f"{m.wrk.rate:,.0f}",
                ms(m.wrk.p50),
                ms(m.wrk.p99),
                ratio(quotient(m.wrk.rate, bare.wrk.rate)) if bare else "n/a",
                ratio(quotient(m.wrk.p99, bare.wrk.p99)) if bare else "n/a",
                f"{m.server_us:,.0f}",
                f"{m.redis_us:,.1f}",
                f"{m.wrk_share:.0%}",
                m.load,
            ]
        )
    return rows


def ratios_to_bare(rounds: Sequence[Measured], key: str) -> tuple[Spread, Spread]:
    """The spread over the rounds of ``key``'s req/s and p99 as multiples of the bare app's in
    the same round."""
    bare = {m.round: m for m in rounds if m.side.key == "bare"}
    mine = [m for m in rounds if m.side.key == key and m.round in bare]
    return (
        Spread.of([quotient(m.wrk.rate, bare[m.round].wrk.rate) for m in mine]),
        Spread.of([quotient(m.wrk.p99, bare[m.round].wrk.p99) for m in mine]),
    )


def report(
    rounds: Sequence[Measured],
    problems: dict[str, list[str]],
    checked: dict[str, Checked],
    verified: Verified,
    options: CompareOptions,
) -> list[Target]:
    """Per-round table, checks, the summary of ratios and CPU, and the targets."""
    print(
        table(
            [
                "round side",
                "requests",
                "req/s",
                "p50 ms",
                "p99 ms",
                "req/s vs bare",
                "p99 vs bare",
                "gunicorn CPU µs/req",
                "Redis CPU µs/req",
                "wrk CPU",
                "load avg",
            ],
            _rows(rounds),
        )
    )
    labels = {m.side.key: m.side.label for m in rounds}
    print(paragraph("sides: " + "; ".join(f"{k} = {v}" for k, v in labels.items()) + "."))
    sizes = ", ".join(f"{key} {c.body_size:,} B" for key, c in checked.items())
    wrong = {key: found for key, found in problems.items() if found}
    blanco_requests = sum(m.wrk.requests for m in rounds if m.side.key in OPEN_SIDES)
    non_2xx = sum(m.wrk.non_2xx for m in rounds)
    errors = sum(m.wrk.socket_errors for m in rounds)
    print(
        paragraph(
            f"checks: {'PROBLEMS ' + str(wrong) if wrong else 'every side answered 200 image/png'}"
            f" before and after warm-up, no X-Blanco-Fallback ({CHECKS} requests each); bodies "
            f"{sizes}; wrk saw {non_2xx} non-2xx answers and {errors} socket errors; "
            f"{verified.summary(blanco_requests)}."
        )
    )
    blanco_rate, blanco_p99 = ratios_to_bare(rounds, "blanco")
    slot_rate, slot_p99 = ratios_to_bare(rounds, "slot")
    constant_rate, constant_p99 = ratios_to_bare(rounds, "constant")
    print(f"\n  Summary over {options.rounds} round(s): median (range)")
    print(
        table(
            ["side", "req/s", "p99 ms", "req/s vs bare", "p99 vs bare", "CPU µs/req"],
            [
                _summary_row(rounds, "bare", Spread(1, 1, 1), Spread(1, 1, 1)),
                _summary_row(rounds, "blanco", blanco_rate, blanco_p99),
                _summary_row(rounds, "slot", slot_rate, slot_p99),
                _summary_row(rounds, "constant", constant_rate, constant_p99),
            ],
            "    ",
        )
    )
    print(
        paragraph(
            "CPU µs/req is gunicorn's (master and workers) plus, for Blanco's sides, the Redis "
            "server's (in parentheses). By CPU alone, Blanco's open would get "
            f"{ratio(_cpu_ratio(rounds))} of the bare app's throughput; wrk and other work "
            "share the same 2 cores, so req/s ratios move more than CPU ratios."
        )
    )
    print(
        paragraph(
            f"Blanco's constant route reaches {constant_rate.ratios()} of the bare app's req/s: "
            "that is the cost of Blanco's Flask hooks and middleware alone. It shares Blanco's "
            "overhead and so flatters Blanco as a baseline: the targets use the bare app."
        )
    )
    targets = [
        Target(
            "HTTP Blanco open (cache hit) req/s vs bare Flask, median of rounds",
            f"{blanco_rate.ratios()}",
            at_least(OPEN_THROUGHPUT_VS_BARE),
            blanco_rate.median >= OPEN_THROUGHPUT_VS_BARE,
        ),
        Target(
            "HTTP Blanco open (cache hit) p99 vs bare Flask p99, median of rounds",
            f"{blanco_p99.ratios()}",
            at_most(OPEN_P99_VS_BARE),
            blanco_p99.median <= OPEN_P99_VS_BARE,
        ),
        Target(
            "HTTP newsletter slot re-open req/s vs bare Flask, median of rounds",
            f"{slot_rate.ratios()}",
            at_least(SLOT_REOPEN_VS_BARE),
            slot_rate.median >= SLOT_REOPEN_VS_BARE,
        ),
    ]
    for target in targets:
        print(target.line())
    return targets


def _summary_row(
    rounds: Sequence[Measured], key: str, rate_ratio: Spread, p99_ratio: Spread
) -> list[str]:
    mine = [m for m in rounds if m.side.key == key]
    server = Spread.of([m.server_us for m in mine])
    redis_us = Spread.of([m.redis_us for m in mine])
    cpu = f"{server.median:,.0f}"
    if key != "bare":
        cpu += f" (+{redis_us.median:,.0f} Redis)"
    return [
        key,
        Spread.of([m.wrk.rate for m in mine]).number(),
        Spread.of([m.wrk.p99 * 1000 for m in mine]).number(2),
        rate_ratio.ratios(),
        p99_ratio.ratios(),
        cpu,
    ]


def _cpu_ratio(rounds: Sequence[Measured]) -> float:
    """Bare CPU per request over Blanco's (gunicorn + Redis), medians over the rounds."""
    bare = Spread.of([m.server_us for m in rounds if m.side.key == "bare"]).median
    blanco = Spread.of([m.server_us + m.redis_us for m in rounds if m.side.key == "blanco"])
    return quotient(bare, blanco.median)
