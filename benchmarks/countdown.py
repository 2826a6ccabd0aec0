"""Section: a cold 60-frame 600×150 countdown GIF, each run a distinct deadline (no cache),
against the target in docs/design.md (≤ 10 ms and ≤ 50 KB, in benchmarks/targets.py)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pydantic import TypeAdapter

from benchmarks.harness import Target, heading, kib, ms, percentile, table
from benchmarks.targets import COUNTDOWN_BYTES, COUNTDOWN_MEDIAN_SECONDS
from renderers.base import RenderRequest
from renderers.registry import ContentParams, renderer_for

RUNS = 40
NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def run(runs: int = RUNS) -> list[Target]:
    """Render ``runs`` countdowns with distinct deadlines and print medians and sizes."""
    print(heading("3. Cold 60-frame 600×150 countdown GIF (in-process, no cache)"))
    adapter: TypeAdapter[Any] = TypeAdapter(ContentParams)
    renderer = renderer_for("countdown")
    renderer.render_encoded(  # warm-up: fonts and digit masks, as a running worker has them
        adapter.validate_python({"type": "countdown", "deadline": NOW.isoformat()}),
        RenderRequest(600, 150, moment=NOW),
    )
    seconds: list[float] = []
    sizes: list[int] = []
    for index in range(runs):
        deadline = NOW + dt.timedelta(days=2, hours=index, minutes=index * 7, seconds=index)
        params = adapter.validate_python(
            {"type": "countdown", "deadline": deadline.isoformat(), "frames": 60}
        )
        started = time.perf_counter()
        encoded = renderer.render_encoded(params, RenderRequest(600, 150, moment=NOW))
        seconds.append(time.perf_counter() - started)
        sizes.append(len(encoded.body))
    seconds.sort()
    median, p99 = percentile(seconds, 0.5), percentile(seconds, 0.99)
    size = sorted(sizes)[len(sizes) // 2]
    print(
        table(
            ["render", "runs", "median ms", "p99 ms", "median size"],
            [["countdown, 60 frames", str(runs), ms(median), ms(p99), kib(size)]],
        )
    )
    return [
        Target(
            "cold 60-frame countdown, median",
            ms(median) + " ms",
            f"≤ {ms(COUNTDOWN_MEDIAN_SECONDS)} ms",
            median <= COUNTDOWN_MEDIAN_SECONDS,
        ),
        Target(
            "cold 60-frame countdown, size",
            kib(size),
            f"≤ {COUNTDOWN_BYTES // 1024} KB",
            size <= COUNTDOWN_BYTES,
        ),
    ]
