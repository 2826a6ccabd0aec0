"""``--profile``: where the in-process image route spends its time, by cProfile, per request.

cProfile adds a roughly constant cost per Python call, so small, often-called functions look
heavier than they are; read the figures as a ranking, not as timings.
"""

from __future__ import annotations

import cProfile
import pstats
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from benchmarks.audience import first_names, store_recipients
from benchmarks.harness import heading, run_series, services_of, table
from benchmarks.open_route import CACHE_HIT_RECIPIENT, WsgiReplay, prebuilt_environ
from benchmarks.slot_route import SLOT, demo_send_id
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.urls import SEND_PARAM, TOKEN_PARAM, image_path, slot_image_path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIRS = tuple(str(ROOT / name) + "/" for name in ("server", "models", "renderers"))
LIBRARY_DIRS = (sysconfig.get_paths()["purelib"] + "/", sysconfig.get_paths()["stdlib"] + "/")
TOP = 14


@dataclass(frozen=True)
class ProfileOptions:
    """How many requests are profiled."""

    cache_hits: int = 3000
    cold: int = 200


def _name(file: str, line: int, function: str) -> str:
    if file == "~":
        return function
    for prefix in (str(ROOT) + "/", *LIBRARY_DIRS):
        if file.startswith(prefix):
            file = file[len(prefix) :]
            break
    return f"{file}:{line}({function})"


def _report(title: str, profile: cProfile.Profile, requests: int) -> None:
    """The top functions by own time, and the project's by cumulative time, per request."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = [
        (_name(*where), calls / requests, own / requests * 1e6, total / requests * 1e6, where[0])
        for where, (_, calls, own, total, _) in stats.items()
    ]
    headers = ["function", "calls/req", "own µs/req", "cum µs/req"]

    def cells(row: tuple[str, float, float, float, str]) -> list[str]:
        return [row[0], f"{row[1]:.1f}", f"{row[2]:.1f}", f"{row[3]:.1f}"]

    own_time = sum(r[2] for r in rows)
    print(f"\n  {title}: {requests} requests, {own_time:,.0f} µs/request under the profiler")
    print("  by own time:")
    print(table(headers, [cells(r) for r in sorted(rows, key=lambda r: -r[2])[:TOP]], "    "))
    ours = [r for r in rows if r[4].startswith(PROJECT_DIRS)]
    print("  project code by cumulative time:")
    print(table(headers, [cells(r) for r in sorted(ours, key=lambda r: -r[3])[:TOP]], "    "))


def run(app: Flask, options: ProfileOptions | None = None) -> None:
    """Profile cache hits, slot re-opens and cold renders of the image routes."""
    options = options or ProfileOptions()
    print(heading("Profile of the image route (cProfile, in-process)"))
    services = services_of(app)
    path = image_path(CAMPAIGN_ID, BLOCK_ID)
    token = services.signer.sign(CACHE_HIT_RECIPIENT)
    hit = WsgiReplay(app, [prebuilt_environ(path, {TOKEN_PARAM: token})])
    ids = store_recipients(services, "bench-profile", first_names(options.cold, skip=2000))
    cold = WsgiReplay(
        app, [prebuilt_environ(path, {TOKEN_PARAM: services.signer.sign(rid)}) for rid in ids]
    )
    slot_query = {TOKEN_PARAM: token, SEND_PARAM: demo_send_id(services)}
    slot = WsgiReplay(app, [prebuilt_environ(slot_image_path(CAMPAIGN_ID, SLOT), slot_query)])
    run_series(hit, count=100, max_seconds=10)
    run_series(slot, count=100, max_seconds=10)
    for title, replay, count in (
        ("cache hit", hit, options.cache_hits),
        ("slot re-open", slot, options.cache_hits),
        ("cold", cold, len(ids)),
    ):
        profile = cProfile.Profile()
        profile.enable()
        timing = run_series(replay, count=count, max_seconds=60)
        profile.disable()
        _report(title, profile, timing.count)
