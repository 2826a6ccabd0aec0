"""The performance targets of docs/design.md ("Performance targets"), in one place.

Sections compare what they measure with these; the figures they are checked against are always
measured in the same run.
"""

from __future__ import annotations

OPEN_THROUGHPUT_VS_BARE = 0.5
"""A cache-hit open serves at least this share of the bare constant-PNG app's req/s."""

OPEN_P99_VS_BARE = 2.0
"""A cache-hit open's p99 latency is at most this multiple of the bare app's p99."""

RECORDING_COST = 0.20
"""Recording an open costs the image route less than this share of its throughput."""

SLOT_FIRST_OPEN_VS_BLOCK_COLD = 2.0
"""A newsletter slot's first open (ranking the items for the send) takes at most this multiple of
a block's cold open (rendering a personal banner), median against median."""

FIRST_OPEN_VS_RENDER = 0.8
"""A personalised first open (token, read, decide, render and encode, cache, record) serves at
least this share of the rate of rendering and encoding the same banner alone: the open's own
work costs at most a quarter of the render."""

SLOT_REOPEN_VS_BARE = 0.5
"""A newsletter slot's re-open serves at least this share of the bare app's req/s."""

COLD_BANNER_MEDIAN_SECONDS = 0.003
"""A cold personalised 600×200 banner: render and encode, median."""

COUNTDOWN_MEDIAN_SECONDS = 0.010
COUNTDOWN_BYTES = 50 * 1024
"""A cold 60-frame 600×150 countdown GIF: median time and size."""

BARE_PNG_BYTES = 21 * 1024
"""The size of the baseline's constant PNG (design.md: "a constant 21 KB PNG")."""

GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
"""The serving shape of the targets: gunicorn, gthread workers × threads, keep-alive."""

WRK_THREADS = 2
WRK_CONNECTIONS = 8
"""The load of the targets: wrk's threads and keep-alive connections, on the same box."""


def at_least(share: float) -> str:
    """``≥ 0.50×``."""
    return f"≥ {share:.2f}×"


def at_most(multiple: float) -> str:
    """``≤ 2.00×``."""
    return f"≤ {multiple:.2f}×"
