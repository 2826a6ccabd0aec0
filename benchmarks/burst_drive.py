"""How ``benchmarks.burst`` drives the send: the options, the stages, and what the server
counted (its /metrics, its workers' CPU from /proc)."""

from __future__ import annotations

import http.client
import math
import os
import resource
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.burst_mix import Request
from benchmarks.burst_report import Stage
from benchmarks.burst_wrk import ensure_wrk, run_wrk, write_requests
from benchmarks.harness import load_average, ms, redis_cpu_seconds
from benchmarks.http_load import HOST, GunicornProcess


@dataclass(frozen=True)
class BurstOptions:
    """The command line."""

    recipients: int
    window: float
    connections: tuple[int, ...]
    unique_names: bool
    warmup: float
    max_seconds: float
    seed: int
    local_cache_mb: int | None = None


def progress(message: str) -> None:
    """A progress line (stdout, flushed, marked off the report's lines)."""
    print(f"  … {message}", flush=True)


def scrape(port: int) -> dict[str, float]:
    """The server's /metrics (every worker's counts), as ``name{labels}`` → value."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}"
            found[key] = found.get(key, 0.0) + sample.value
    return found


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """``after - before`` per metric."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def slices(requests: list[Request], options: BurstOptions) -> list[tuple[str, int, list[Request]]]:
    """(label, connections, requests) per stage: the warm-up, then one slice per count."""
    warm = math.ceil(len(requests) * options.warmup) if options.warmup else 0
    stages = [("warm-up (cold caches)", options.connections[0], requests[:warm])] if warm else []
    rest = requests[warm:]
    share = math.ceil(len(rest) / len(options.connections))
    for index, count in enumerate(options.connections):
        part = rest[index * share : (index + 1) * share]
        if part:
            stages.append((f"burst part {index + 1}", count, part))
    return stages


def gunicorn_worker_cpu(port: int) -> dict[int, float]:
    """CPU seconds so far of each gunicorn worker serving ``port`` (the processes whose
    environment binds it, less the master, whose parent is not one of them), from /proc."""
    marker = f"BLANCO_BIND={HOST}:{port}".encode()
    found: dict[int, tuple[int, float]] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return {pid: cpu for pid, (parent, cpu) in found.items() if parent in found}


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drive(
    server: GunicornProcess,
    redis_client: redis.Redis,
    workdir: Path,
    requests: list[Request],
    options: BurstOptions,
) -> tuple[list[Stage], dict[str, float]]:
    """Run every stage; return them and the server's metrics deltas over all of them."""
    wrk = ensure_wrk()
    url = f"http://{HOST}:{server.port}"
    first = scrape(server.port)
    stages: list[Stage] = []
    for index, (label, connections, part) in enumerate(slices(requests, options)):
        path = workdir / f"stage{index}.txt"
        write_requests(path, part)
        before = scrape(server.port)
        workers = gunicorn_worker_cpu(server.port)
        cpu, redis_cpu, wrk_cpu = (
            server.cpu_seconds(),
            redis_cpu_seconds(redis_client),
            children_cpu(),
        )
        run = run_wrk(wrk, url, path, len(part), connections, options.max_seconds)
        run = replace(
            run,
            server_cpu=server.cpu_seconds() - cpu,
            redis_cpu=redis_cpu_seconds(redis_client) - redis_cpu,
            wrk_cpu=children_cpu() - wrk_cpu,
        )
        workers_after = gunicorn_worker_cpu(server.port)
        split = sorted(
            (cpu_now - workers.get(pid, 0.0) for pid, cpu_now in workers_after.items()),
            reverse=True,
        )
        after = scrape(server.port)
        delta = difference(after, before)
        cache = {
            result: delta.get(f"blanco_render_cache_total{{result={result}}}", 0.0)
            for result in ("hit_local", "hit_redis", "miss")
        }
        stages.append(Stage(label, run, cache, tuple(split)))
        progress(
            f"{label}: {run.answers:,} answers at {connections} connections, "
            f"{run.rate:,.0f} req/s, p99 {ms(run.p99)} ms (load average {load_average()})"
        )
    return stages, difference(scrape(server.port), first)


def server_problems(deltas: dict[str, float]) -> Counter[str]:
    """Fallbacks and 5xx answers the server counted (every answer, wrk's dropped tail too)."""
    found: Counter[str] = Counter()
    for key, value in deltas.items():
        if value and key.startswith("blanco_fallbacks_total"):
            found[f"fallback {key.partition('reason=')[2].rstrip('}')}"] += int(value)
        if value and key.startswith("blanco_http_requests_total") and "status=5" in key:
            found[key] += int(value)
    return found
