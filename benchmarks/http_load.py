"""gunicorn on 127.0.0.1 as a child process, and a small keep-alive load generator in Python.

gunicorn runs the repository's ``gunicorn.conf.py`` (gthread workers) on the benchmark Redis, or
the arguments given. The load generator (Python threads with one ``http.client`` keep-alive
connection each, a fixed number of requests and a time limit) drives the recording section over
HTTP, which needs a per-request check of every answer; the comparison with the bare app
(``benchmarks.http_compare``) uses wrk.
"""

from __future__ import annotations

import http.client
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

from benchmarks.harness import (
    PUBLIC_URL,
    Timing,
    quotient,
    redis_cpu_seconds,
    timing_row,
)
from benchmarks.open_route import ACCEPT, USER_AGENT

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
APP = "benchmarks.http_app:create_bench_app()"
TCP_LISTEN = "0A"
"""A listening socket's state in /proc/net/tcp."""
HEADERS = {"User-Agent": USER_AGENT, "Accept": ACCEPT}


@dataclass(frozen=True)
class HttpOptions:
    """The server and the load of the Python load generator (the recording cost over HTTP,
    the bulk ingest over HTTP)."""

    requests: int = 6000
    connections: int = 8
    time_limit: float = 20.0
    rounds: int = 2
    warmup: int = 400
    workers: int = 2
    threads: int = 4
    start_timeout: float = 30.0


def process_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by ``root_pid`` and its children, from /proc;
    NaN where there is no /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return math.nan
    for entry in entries:
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if entry.name == str(root_pid) or fields[1] == str(root_pid):
            total += int(fields[11]) + int(fields[12])
    return total / ticks if total else math.nan


class GunicornProcess:
    """gunicorn serving the benchmark app as a child process; stopped with SIGTERM.

    By default it runs the repository's ``gunicorn.conf.py`` with Blanco's benchmark app and is
    ready when ``/readyz`` answers 200 and every worker listens (Blanco's configuration gives
    each worker a socket of its own: the first worker answers before the last has started, and
    a load that connected then would leave the others idle); ``argv`` (gunicorn's arguments) and
    ``ready_path`` serve another app, ready when one socket listens."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        log_path: Path,
        timeout: float,
        *,
        argv: Sequence[str] = ("-c", str(ROOT / "gunicorn.conf.py"), APP),
        ready_path: str = "/readyz",
    ) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.timeout = timeout
        self.argv = tuple(argv)
        self.ready_path = ready_path
        self.listeners = int(env.get("BLANCO_WORKERS", 1)) if argv[-1] == APP else 1
        """Sockets listening on the port once every worker has started."""
        self._process: subprocess.Popen[bytes] | None = None

    def cpu_seconds(self) -> float:
        """CPU time gunicorn's master and workers have used so far."""
        return process_tree_cpu(self._process.pid) if self._process else math.nan

    def __enter__(self) -> GunicornProcess:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *self.argv],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                break
            connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
            try:
                connection.request("GET", self.ready_path)
                ready = connection.getresponse().status == 200
                if ready and listening_sockets(self.port) >= self.listeners:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"gunicorn did not become ready; its log ends with:\n{tail}")

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on ``port`` (IPv4, from /proc)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for fields in (line.split() for line in lines)
        if fields[3] == TCP_LISTEN and int(fields[1].rpartition(":")[2], 16) == port
    )


@dataclass
class _Run:
    """What the client threads share: the target, the start signal and the deadline."""

    port: int
    path: str
    deadline: float = 0.0
    go: threading.Event = field(default_factory=threading.Event)


def _client(run: _Run, count: int, latencies: list[float], problems: Counter[str]) -> None:
    """One keep-alive connection sending up to ``count`` requests before the deadline."""
    connection = http.client.HTTPConnection(HOST, run.port, timeout=10)
    try:
        try:
            connection.connect()
        except OSError as exc:  # counted; the first request tries again
            problems[f"connect: {type(exc).__name__}"] += 1
        run.go.wait()
        for _ in range(count):
            if time.perf_counter() > run.deadline:
                break
            begin = time.perf_counter()
            try:
                connection.request("GET", run.path, headers=HEADERS)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                problems[type(exc).__name__] += 1
                connection.close()  # the next request reconnects
                continue
            latencies.append(time.perf_counter() - begin)
            if response.status != 200:
                problems[f"status {response.status}"] += 1
            elif fallback := response.getheader("X-Blanco-Fallback"):
                problems[f"fallback ({fallback})"] += 1
    finally:
        connection.close()


@dataclass(frozen=True)
class Load:
    """The outcome of driving one route."""

    timing: Timing
    problems: Counter[str]
    client_cpu: float

    @classmethod
    def merged(cls, parts: list[Load]) -> Load:
        """Several loads of one route as one."""
        return cls(
            Timing.merged([p.timing for p in parts]),
            sum((p.problems for p in parts), Counter()),
            sum(p.client_cpu for p in parts),
        )


def drive(
    server: GunicornProcess,
    redis_client: redis.Redis,
    path: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
) -> Load:
    """Send ``requests`` GETs of ``path`` over ``connections`` keep-alive connections."""
    run = _Run(server.port, path)
    counts = [requests // connections + (i < requests % connections) for i in range(connections)]
    latencies: list[list[float]] = [[] for _ in counts]
    problems: list[Counter[str]] = [Counter() for _ in counts]
    threads = [
        threading.Thread(target=_client, args=(run, count, lat, prob), daemon=True)
        for count, lat, prob in zip(counts, latencies, problems, strict=True)
    ]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    server_cpu = server.cpu_seconds()
    redis_cpu = redis_cpu_seconds(redis_client)
    start = time.perf_counter()
    run.deadline = start + time_limit
    run.go.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    timing = Timing(
        tuple(sorted(x for part in latencies for x in part)),
        elapsed,
        server.cpu_seconds() - server_cpu,
        redis_cpu_seconds(redis_client) - redis_cpu,
    )
    return Load(
        timing,
        sum(problems, Counter()),
        time.process_time() - cpu,
    )


def gunicorn_env(
    redis_url: str,
    signing_key: str,
    port: int,
    data_dir: Path,
    options: HttpOptions,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment gunicorn runs the benchmark app in (``extra`` on top)."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "BLANCO_SIGNING_KEYS": signing_key,
        "BLANCO_BIND": f"{HOST}:{port}",
        "BLANCO_WORKERS": str(options.workers),
        "BLANCO_THREADS": str(options.threads),
        "BLANCO_DATA_DIR": str(data_dir),
        "BLANCO_PUBLIC_URL": PUBLIC_URL,
        "BLANCO_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


def load_row(label: str, load: Load, baseline: Load) -> list[str]:
    """The shared timing columns plus the load generator's CPU share."""
    client_cpu = quotient(load.client_cpu, load.timing.elapsed)
    return [*timing_row(label, load.timing, baseline.timing), f"{client_cpu:.0%}"]
