"""``python -m benchmarks [--http] [--profile]``: print Blanco's figures next to their baselines."""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import PIL
import redis.utils

from benchmarks import countdown, http_load, open_route, profiling, render
from benchmarks.harness import Target, bench_redis, build_app, heading, redacted, services_of
from server.demo import load_demo


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Blanco's performance figures against baselines measured in the same run "
        "(see DESIGN.md, Performance). Uses REDIS_URL, database 14 (flushed at start and end), "
        "or an embedded Redis in a temporary folder. Always exits 0 once it has run.",
    )
    inprocess = open_route.OpenRouteOptions()
    parser.add_argument(
        "--rounds", type=int, default=inprocess.rounds, help="interleaved rounds of (a) and (b)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=inprocess.seconds,
        help="seconds per route per round in section 1",
    )
    parser.add_argument(
        "--cold", type=int, default=inprocess.cold, help="new recipients for route (c)"
    )
    parser.add_argument(
        "--names",
        type=int,
        default=render.RenderOptions().names,
        help="distinct names rendered in section 2 (at least 200)",
    )
    http = http_load.HttpOptions()
    parser.add_argument(
        "--http", action="store_true", help="also measure through gunicorn on 127.0.0.1"
    )
    parser.add_argument(
        "--http-requests", type=int, default=http.requests, help="requests per route (HTTP mode)"
    )
    parser.add_argument(
        "--http-connections",
        type=int,
        default=http.connections,
        help="keep-alive connections (one thread each) in HTTP mode",
    )
    parser.add_argument(
        "--http-time-limit",
        type=float,
        default=http.time_limit,
        help="seconds at most per route in HTTP mode",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile hot spots of the image route"
    )
    args = parser.parse_args(argv)
    if args.names < 200:
        parser.error("--names must be at least 200")
    return args


def _load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def _environment(redis_origin: str, redis_url: str, redis_version: str) -> str:
    hiredis = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "no hiredis"
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Pillow {PIL.__version__}; redis-py {redis.__version__} ({hiredis})\n"
        f"Redis {redis_version}, {redis_origin}: {redacted(redis_url)}\n"
        f"load average at start: {_load_average()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sections, print a summary of the targets, and exit 0."""
    args = parse_args(argv)
    started = time.perf_counter()
    targets: list[Target] = []
    print("Blanco benchmarks (figures are informational; targets from DESIGN.md, Performance)")
    with (
        tempfile.TemporaryDirectory(prefix="blanco-bench-") as folder,
        bench_redis(Path(folder)) as bench,
    ):
        print(_environment(bench.origin, bench.url, bench.version), flush=True)
        signing_key = secrets.token_urlsafe(48)
        app = build_app(bench.url, signing_key, Path(folder))
        services = services_of(app)
        try:
            load_demo(services)
            targets += open_route.run(
                app,
                open_route.OpenRouteOptions(
                    rounds=args.rounds, seconds=args.seconds, cold=args.cold
                ),
            )
            sys.stdout.flush()
            targets += render.run(render.RenderOptions(names=args.names))
            sys.stdout.flush()
            targets += countdown.run()
            sys.stdout.flush()
            if args.http:
                targets += http_load.run(
                    services,
                    bench.url,
                    signing_key,
                    Path(folder),
                    http_load.HttpOptions(
                        requests=args.http_requests,
                        connections=args.http_connections,
                        time_limit=args.http_time_limit,
                    ),
                )
            if args.profile:
                profiling.run(app)
        finally:
            services.redis.close()
            services.redis_bytes.close()
    print(heading("Summary"))
    for target in targets:
        print(target.line())
    met = sum(t.met for t in targets)
    print(
        f"  {met}/{len(targets)} targets met; ran in {time.perf_counter() - started:.1f} s; "
        f"load average at end: {_load_average()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
