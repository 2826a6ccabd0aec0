"""``python -m benchmarks [--no-http | --http-only] [--profile]``: Blanco's figures next to their
baselines."""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks import (
    countdown,
    first_open,
    http_compare,
    open_route,
    profiling,
    recording,
    render,
    replay_figures,
    slot_route,
    stages,
)
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
        "(see docs/design.md, Performance targets). Uses REDIS_URL, database 14 (flushed at "
        "start and end), or a redis-server on a free TCP port of 127.0.0.1. Always exits 0 "
        "once it has run.",
    )
    inprocess = open_route.OpenRouteOptions()
    parser.add_argument(
        "--rounds", type=int, default=inprocess.rounds, help="interleaved in-process rounds"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=inprocess.seconds,
        help="seconds per route per in-process round (half that per series in section 4)",
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
    http = http_compare.CompareOptions()
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--no-http", action="store_true", help="skip what runs through gunicorn (sections 5, 6)"
    )
    where.add_argument(
        "--http-only",
        action="store_true",
        help="only section 6: Blanco's open against the bare Flask app, with wrk",
    )
    parser.add_argument(
        "--http-rounds", type=int, default=http.rounds, help="interleaved wrk rounds (section 6)"
    )
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=http.seconds,
        help="seconds of wrk per side per round (section 6)",
    )
    parser.add_argument(
        "--http-requests",
        type=int,
        default=recording.HTTP_OPTIONS.requests,
        help="requests per route of the recording cost over HTTP (section 5)",
    )
    parser.add_argument(
        "--http-connections",
        type=int,
        default=recording.HTTP_OPTIONS.connections,
        help="keep-alive connections of the recording cost over HTTP (section 5)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile hot spots of the image route"
    )
    args = parser.parse_args(argv)
    if args.names < 200:
        parser.error("--names must be at least 200")
    if args.http_rounds < 1 or args.http_seconds < 1:
        parser.error("--http-rounds and --http-seconds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sections, print a summary of the targets, and exit 0."""
    args = parse_args(argv)
    started = time.perf_counter()
    targets: list[Target] = []
    print(
        "Blanco benchmarks (figures are informational; targets from docs/design.md, "
        "Performance targets)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="blanco-bench-") as folder,
        bench_redis(Path(folder)) as bench,
    ):
        print(environment(bench.origin, bench.url, bench.version), flush=True)
        signing_key = secrets.token_urlsafe(48)
        app = build_app(bench.url, signing_key, Path(folder))
        services = services_of(app)
        http = http_compare.CompareOptions(rounds=args.http_rounds, seconds=args.http_seconds)
        try:
            load_demo(services)
            if args.http_only:
                targets += http_compare.run(services, bench.url, signing_key, Path(folder), http)
            else:
                targets += open_route.run(
                    app,
                    open_route.OpenRouteOptions(
                        rounds=args.rounds, seconds=args.seconds, cold=args.cold
                    ),
                )
                sys.stdout.flush()
                targets += slot_route.run(app, slot_route.SlotRouteOptions())
                sys.stdout.flush()
                targets += first_open.run(app)
                sys.stdout.flush()
                targets += render.run(render.RenderOptions(names=args.names))
                sys.stdout.flush()
                targets += countdown.run()
                sys.stdout.flush()
                targets += recording.run(
                    app, recording.RecordingOptions(rounds=args.rounds, seconds=args.seconds / 2)
                )
                sys.stdout.flush()
                if not args.no_http:
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
                    sys.stdout.flush()
                    # after the sections that count the recipient's events: this one adds
                    # tens of thousands to one shard stream, which is capped
                    targets += http_compare.run(
                        services, bench.url, signing_key, Path(folder), http
                    )
                    sys.stdout.flush()
                stages.run(app)
                sys.stdout.flush()
                replay_figures.run()
                sys.stdout.flush()
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
