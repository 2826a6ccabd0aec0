"""Section 2: a cold personalised 600×200 banner render in-process, against a naive render.

The naive baseline (docs/design.md): the same text drawn with a font
loaded from disk for every request, saved as PNG level 9. It draws exactly the text, sizes and
positions Blanco's layout picks (worked out untimed), so both sides draw the same pixels and
the comparison is of fonts, drawing and encoding, not of layout.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFont

from benchmarks.audience import first_names
from benchmarks.harness import Target, heading, kib, ms, paragraph, percentile, ratio, table
from benchmarks.targets import COLD_BANNER_MEDIAN_SECONDS
from models.campaigns.specs import BlockSpec
from renderers.banner import BannerParams, layout
from renderers.base import PNG_COMPRESS_LEVEL, RenderRequest, choose_format, encode_image
from renderers.registry import renderer_for
from server.demo.data import DEMO_BLOCK

VARIANT_ID = "city-trip"  # the demo's "{{ first_name }}, your city trip awaits" banner
NAIVE_PNG_LEVEL = 9
WARMUP = 10
NAME_OFFSET = 1000  # names unlike those of section 1
COLUMNS = ("render", "median ms", "p99 ms", "draw p50", "encode p50", "CPU p50", "size", "vs naive")


@dataclass(frozen=True)
class RenderOptions:
    """How many names section 2 renders."""

    names: int = 300


def demo_banner() -> tuple[BannerParams, int, int]:
    """The demo's personalised banner params with the block's width and height."""
    spec = BlockSpec.model_validate(DEMO_BLOCK)
    variant = spec.variant(VARIANT_ID)
    if variant is None or not isinstance(variant.content, BannerParams):
        raise LookupError(f"the demo block has no banner variant {VARIANT_ID!r}")
    return variant.content, spec.width, spec.height


@dataclass(frozen=True)
class NaiveText:
    """One line of text as the naive renderer draws it."""

    text: str
    font_file: str
    size: float
    y: int
    align: Literal["left", "center", "right"]
    color: str


@dataclass(frozen=True)
class NaivePlan:
    """Everything the naive renderer draws for one recipient."""

    width: int
    height: int
    padding: int
    background: str
    texts: tuple[NaiveText, ...]


def naive_plan(params: BannerParams, request: RenderRequest) -> NaivePlan:
    """The lines, font sizes and positions the banner renderer picks (same layout rules)."""
    fitted_lines = layout(params, request)
    total = sum(len(f.lines) * f.line_height for _, f in fitted_lines)
    y = {
        "top": params.padding,
        "middle": (request.height - total) // 2,
        "bottom": request.height - params.padding - total,
    }[params.valign]
    texts = []
    for line, fitted in fitted_lines:
        font_file = fitted.font.path  # the file Blanco's cached font came from
        if not isinstance(font_file, str | os.PathLike):
            raise TypeError("the naive baseline needs fonts loaded from files")
        for text in fitted.lines:
            texts.append(
                NaiveText(text, os.fsdecode(font_file), fitted.font.size, y, line.align, line.color)
            )
            y += fitted.line_height
    return NaivePlan(request.width, request.height, params.padding, params.background, tuple(texts))


def naive_draw(plan: NaivePlan) -> Image.Image:
    """Draw the plan, loading each font from disk as a naive renderer does."""
    image = Image.new("RGB", (plan.width, plan.height), plan.background)
    draw = ImageDraw.Draw(image)
    for text in plan.texts:
        font = ImageFont.truetype(text.font_file, size=text.size)
        width = font.getlength(text.text)
        x = {
            "left": plan.padding,
            "center": (plan.width - width) / 2,
            "right": plan.width - plan.padding - width,
        }[text.align]
        draw.text((x, text.y), text.text, font=font, fill=text.color)
    return image


def naive_encode(image: Image.Image) -> bytes:
    """PNG at the slowest compression level, as a naive renderer saves it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=NAIVE_PNG_LEVEL)
    return buffer.getvalue()


@dataclass(frozen=True)
class Sample:
    """One render: drawing and encoding wall time and its CPU time in seconds, and the encoded
    size in bytes."""

    draw: float
    encode: float
    cpu: float
    size: int

    @property
    def total(self) -> float:
        """Drawing plus encoding."""
        return self.draw + self.encode


def time_blanco(params: BannerParams, request: RenderRequest) -> tuple[Sample, Image.Image]:
    """Blanco's render and encode, as the image route calls them on a cache miss."""
    renderer = renderer_for("banner")
    cpu = time.process_time()
    begin = time.perf_counter()
    image = renderer.render(params, request)
    drawn = time.perf_counter()
    encoded = encode_image(
        image,
        choose_format(params.output, request.accepts_webp, renderer.animated),
        drawn=renderer.drawn(params),
    )
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    return Sample(drawn - begin, done - drawn, cpu, len(encoded.body)), image


def time_naive(plan: NaivePlan) -> tuple[Sample, Image.Image]:
    """The naive render and encode."""
    cpu = time.process_time()
    begin = time.perf_counter()
    image = naive_draw(plan)
    drawn = time.perf_counter()
    body = naive_encode(image)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    return Sample(drawn - begin, done - drawn, cpu, len(body)), image


def _median(samples: list[Sample], value: Callable[[Sample], float]) -> float:
    return percentile(sorted(value(s) for s in samples), 0.5)


def _row(label: str, samples: list[Sample], baseline: list[Sample]) -> list[str]:
    totals = sorted(s.total for s in samples)
    return [
        label,
        ms(percentile(totals, 0.5)),
        ms(percentile(totals, 0.99)),
        ms(_median(samples, lambda s: s.draw)),
        ms(_median(samples, lambda s: s.encode)),
        ms(_median(samples, lambda s: s.cpu)),
        kib(_median(samples, lambda s: s.size)),
        ratio(percentile(totals, 0.5) / _median(baseline, lambda s: s.total)),
    ]


def run(options: RenderOptions) -> list[Target]:
    """Render the personalised banner for distinct names, Blanco's way and the naive way."""
    print(heading("2. Cold personalised 600×200 banner render in-process (no HTTP, no cache)"))
    params, width, height = demo_banner()
    names = first_names(WARMUP + options.names, skip=NAME_OFFSET)
    blanco: list[Sample] = []
    naive: list[Sample] = []
    identical = 0
    for index, name in enumerate(names):
        request = RenderRequest(width, height, {"first_name": name})
        plan = naive_plan(params, request)
        if index % 2:  # alternate which goes first, so neither gets the warmer caches
            theirs, ours = time_naive(plan), time_blanco(params, request)
        else:
            ours, theirs = time_blanco(params, request), time_naive(plan)
        if index < WARMUP:
            continue
        blanco.append(ours[0])
        naive.append(theirs[0])
        identical += ImageChops.difference(ours[1], theirs[1]).getbbox() is None
    print(
        paragraph(
            f"{len(blanco)} distinct first names, each rendered once per side in alternating "
            f"order; the demo's {VARIANT_ID!r} banner, {params.lines[0].text!r}. The naive side "
            "draws the text, sizes and positions Blanco's layout picked (worked out untimed). "
            "Wall times, except CPU p50 (this process's CPU time, which other load on the "
            "machine does not inflate)."
        )
    )
    print(
        table(
            COLUMNS,
            [
                _row(
                    f"naive: font loaded per text, PNG level {NAIVE_PNG_LEVEL} (baseline)",
                    naive,
                    naive,
                ),
                _row(
                    f'Blanco: renderer_for("banner"), PNG level {PNG_COMPRESS_LEVEL}',
                    blanco,
                    naive,
                ),
            ],
        )
    )
    print(f"  checks: same pixels on both sides for {identical}/{len(blanco)} names")
    median = _median(blanco, lambda s: s.total)
    naive_median = _median(naive, lambda s: s.total)
    targets = [
        Target(
            "cold personalised render, median",
            f"{ms(median)} ms",
            f"≤ {ms(COLD_BANNER_MEDIAN_SECONDS)} ms",
            median <= COLD_BANNER_MEDIAN_SECONDS,
        ),
        Target(
            "cold personalised render vs naive, median",
            ratio(median / naive_median),
            "< 1.00×",
            median < naive_median,
        ),
        Target(
            "PNG compression level", str(PNG_COMPRESS_LEVEL), "never 9", PNG_COMPRESS_LEVEL != 9
        ),
    ]
    for target in targets:
        print(target.line())
    return targets
