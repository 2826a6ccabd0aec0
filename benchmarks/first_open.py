"""Section 1c: a personalised first open against rendering and encoding the same banner alone.

A recipient's first open of the demo block renders their personal banner; everything around
the render (the token, the read, the decision, keeping the image, recording the open) is the
open's own work. New recipients are opened one request at a time through the app's WSGI
callable, each followed by the same banner rendered and encoded directly (as the image route
does on a cache miss) for another new name, so both sides meet the same caches: the rate of
first opens is compared with the rate of renders, median against median.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from flask import Flask

from benchmarks.audience import first_names, store_recipients
from benchmarks.harness import Target, heading, ms, paragraph, quotient, ratio, services_of, table
from benchmarks.open_route import WsgiReplay, prebuilt_environ
from benchmarks.render import demo_banner, time_blanco
from benchmarks.targets import FIRST_OPEN_VS_RENDER, at_least
from renderers.base import RenderRequest
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.urls import TOKEN_PARAM, image_path

OPEN_NAMES_FROM = 3_000
RENDER_NAMES_FROM = 4_000
"""Where this section's names start in the deterministic list (others use other ranges)."""


@dataclass(frozen=True)
class FirstOpenOptions:
    """How many pairs section 1c measures."""

    pairs: int = 300
    warmup: int = 20


def run(app: Flask, options: FirstOpenOptions | None = None) -> list[Target]:
    """Interleave first opens and renders of new names; print both and the target."""
    options = options or FirstOpenOptions()
    print(heading("1c. A personalised first open against rendering the same banner alone"))
    services = services_of(app)
    count = options.warmup + options.pairs
    ids = store_recipients(services, "bench-first", first_names(count, skip=OPEN_NAMES_FROM))
    names = first_names(count, skip=RENDER_NAMES_FROM)
    path = image_path(CAMPAIGN_ID, BLOCK_ID)
    opens = WsgiReplay(
        app, [prebuilt_environ(path, {TOKEN_PARAM: services.signer.sign(rid)}) for rid in ids]
    )
    params, width, height = demo_banner()
    open_times: list[float] = []
    render_times: list[float] = []
    for index in range(count):
        opened = opens(index)
        sample, _ = time_blanco(params, RenderRequest(width, height, {"first_name": names[index]}))
        if index >= options.warmup:
            open_times.append(opened)
            render_times.append(sample.total)
    first_open, render = statistics.median(open_times), statistics.median(render_times)
    share = quotient(render, first_open)
    print(
        paragraph(
            f"{options.pairs} new recipients, each opened once (after {options.warmup} to warm "
            "up), each open followed by the demo's 600×200 banner rendered and encoded alone for "
            "another new name. The open's share of the render rate is the render's median over "
            "the open's."
        )
    )
    print(
        table(
            ["side", "requests", "median ms", "rate vs render"],
            [
                ["render and encode alone", f"{len(render_times):,}", ms(render), "1.00×"],
                ["first open (renders)", f"{len(open_times):,}", ms(first_open), ratio(share)],
            ],
        )
    )
    problems = opens.problems
    verdict = f"PROBLEMS: {dict(problems)}" if problems else "all 200 image/png, no fallback"
    print(paragraph(f"checks: {verdict}; {len(opens.etags)} distinct images for {count} opens."))
    target = Target(
        "in-process first open rate vs render-and-encode rate, median",
        ratio(share),
        at_least(FIRST_OPEN_VS_RENDER),
        share >= FIRST_OPEN_VS_RENDER,
    )
    print(target.line())
    return [target]
