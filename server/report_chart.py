"""A report as a PNG chart: opens and clicks over time, and variants side by side."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

from PIL import Image, ImageDraw

from renderers.fonts import load_font

WIDTH, HEIGHT = 900, 460
MARGIN = 48
SERIES = (("opens", "#2E86C1"), ("machine_opens", "#AAB7B8"), ("clicks", "#C0392B"))
BAR_COLORS = ("#2E86C1", "#C0392B")


def render_chart(report: dict[str, Any]) -> bytes:
    """The report's chart as PNG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "#FFFFFF")
    draw = ImageDraw.Draw(image)
    title = load_font("dejavu-sans", "bold", 16)
    small = load_font("dejavu-sans", "regular", 11)
    draw.text(
        (MARGIN, 12),
        f"{report['campaign_id']}  {report['from']} – {report['to']}",
        font=title,
        fill="#1B2631",
    )
    _time_series(draw, report["rows"], (MARGIN, 50, WIDTH // 2 + 60, HEIGHT - MARGIN), small)
    _variant_bars(
        draw, report["totals"], (WIDTH // 2 + 110, 50, WIDTH - 20, HEIGHT - MARGIN), small
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _time_series(
    draw: ImageDraw.ImageDraw,
    rows: list[dict[str, Any]],
    box: tuple[int, int, int, int],
    font: Any,
) -> None:
    left, top, right, bottom = box
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for name, _ in SERIES:
            per_day[row["day"]][name] += row[name]
    days = sorted(per_day)
    peak = max([per_day[d][n] for d in days for n, _ in SERIES] + [1])
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="#566573")
    draw.text((left, bottom + 6), "opens and clicks per day", font=font, fill="#566573")
    draw.text((left - 40, top), str(peak), font=font, fill="#566573")
    if not days:
        draw.text((left + 20, (top + bottom) // 2), "no events yet", font=font, fill="#566573")
        return
    step = (right - left) / max(len(days) - 1, 1)
    for index, (name, color) in enumerate(SERIES):
        points = [
            (left + i * step, bottom - (bottom - top) * per_day[d][name] / peak)
            for i, d in enumerate(days)
        ]
        if len(points) > 1:
            draw.line(points, fill=color, width=3)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=color)
        draw.rectangle(
            (right - 120, top + index * 16, right - 110, top + 10 + index * 16), fill=color
        )
        draw.text((right - 104, top - 2 + index * 16), name, font=font, fill="#1B2631")
    draw.text((left, bottom + 20), days[0], font=font, fill="#566573")
    if len(days) > 1:
        draw.text((right - 60, bottom + 20), days[-1], font=font, fill="#566573")


def _variant_bars(
    draw: ImageDraw.ImageDraw,
    totals: list[dict[str, Any]],
    box: tuple[int, int, int, int],
    font: Any,
) -> None:
    left, top, right, bottom = box
    draw.line([(left, bottom), (right, bottom)], fill="#566573")
    draw.text((left, bottom + 6), "unique opens / clicks per variant", font=font, fill="#566573")
    if not totals:
        return
    peak = max([t["unique_opens"] for t in totals] + [t["unique_clicks"] for t in totals] + [1])
    group = (right - left) / len(totals)
    bar = max(group / 3, 2)
    for index, total in enumerate(totals):
        x = left + index * group + group / 6
        for offset, (name, color) in enumerate(
            zip(("unique_opens", "unique_clicks"), BAR_COLORS, strict=True)
        ):
            height = (bottom - top - 20) * total[name] / peak
            draw.rectangle(
                (x + offset * bar, bottom - height, x + (offset + 1) * bar - 2, bottom), fill=color
            )
        label = f"{total['block']}/{total['variant']}"[:18]
        draw.text((x, bottom + 20 + (index % 2) * 12), label, font=font, fill="#1B2631")
