"""``python -m benchmarks [--http] [--profile]``: print Blanco's figures next to their baselines."""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks import countdown, http_load, open_route, profiling, recording, render
from benchmarks.harness import (
    Target,
    bench_redis,
    build_app,
    environment,
    heading,
    load_average,
    services_of,
)
from server.demo.data import load_demo


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
        help="seconds per route per round in section 1 (half that per series in section 5)",
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
        "--http-requests",
        type=int,
        default=http.requests,
        help="requests per route (HTTP mode: sections 3 and 6)",
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
        print(environment(bench.origin, bench.url, bench.version), flush=True)
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
            targets += recording.run(
                app, recording.RecordingOptions(rounds=args.rounds, seconds=args.seconds / 2)
            )
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
                sys.stdout.flush()
                targets += recording.run_http(
                    services,
                    bench.url,
                    signing_key,
                    Path(folder),
                    replace(
                        recording.HTTP_OPTIONS,
                        requests=args.http_requests,
                        connections=args.http_connections,
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
        f"load average at end: {load_average()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
