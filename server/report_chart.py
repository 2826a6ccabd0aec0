"""A report as a PNG chart, drawn with matplotlib: opens and clicks on a real time axis, and
each block's arms on the primary metric.

The left panel has every day of the report's range, empty days included: people's opens and
machine opens stacked (the split a reader of MPP-era figures needs), clicks by people, and the
approximate unique openers per day, labelled "≈" with their error. The right panel has each
arm's exact click rate per recipient shown, with its counts and, for an arm whose clicks led to
orders, the revenue credited to it per recipient shown. Two sizes: ``email`` (600 px wide,
for a report mailed to a team) and ``slide`` (1600×900).
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

ChartSize = Literal["email", "slide"]
CHART_SIZES: tuple[ChartSize, ...] = ("email", "slide")
HUMAN, MACHINE, CLICKS, UNIQUE = "#2E86C1", "#AAB7B8", "#C0392B", "#1B2631"
MAX_VALUE_LABELS = 14
"""Days up to which each bar carries its value (beyond, the bars are too narrow to read)."""


@dataclass(frozen=True)
class _Shape:
    inches: tuple[float, float]
    dpi: int
    font_size: float


SHAPES: dict[ChartSize, _Shape] = {
    "email": _Shape((6.0, 7.2), 100, 8.0),
    "slide": _Shape((16.0, 9.0), 100, 14.0),
}


@dataclass
class _Day:
    human_opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    approx_unique_opens: int = 0


def render_chart(report: dict[str, Any], size: ChartSize = "email") -> bytes:
    """The report's chart as PNG bytes."""
    from matplotlib import rc_context  # imported when a chart is asked for: slow to import
    from matplotlib.figure import Figure

    shape = SHAPES[size]
    with rc_context({"font.size": shape.font_size, "svg.hashsalt": "blanco"}):
        figure = Figure(figsize=shape.inches, dpi=shape.dpi, layout="constrained")
        if size == "email":
            over_time, by_arm = figure.subplots(2, 1, height_ratios=(1, 1))
        else:
            over_time, by_arm = figure.subplots(1, 2, width_ratios=(3, 2))
        figure.suptitle(_title(report), fontweight="bold")
        _over_time(over_time, report)
        _by_arm(by_arm, report)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _title(report: dict[str, Any]) -> str:
    if report.get("send"):
        return f"{report['campaign_id']}: send {report['send']}"
    return f"{report['campaign_id']}: {report['from']} to {report['to']}"


def _days(report: dict[str, Any]) -> list[str]:
    """Every day of the range (a send report has one column, the send)."""
    if report.get("send"):
        return [report["send"]]
    start, end = dt.date.fromisoformat(report["from"]), dt.date.fromisoformat(report["to"])
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _over_time(axes: Any, report: dict[str, Any]) -> None:
    days = _days(report)
    per_day: dict[str, _Day] = defaultdict(_Day)
    for row in report["rows"]:
        day = per_day[row["day"]]
        day.human_opens += row["opens"] - row["machine_opens"]
        day.machine_opens += row["machine_opens"]
        day.clicks += row["clicks"]
        day.approx_unique_opens += row["approx_unique_opens"] or 0
    xs = [dt.date.fromisoformat(day) for day in days] if not report.get("send") else [0]
    human = [per_day[d].human_opens for d in days]
    machine = [per_day[d].machine_opens for d in days]
    clicks = [per_day[d].clicks for d in days]
    width = 0.8
    axes.bar(xs, human, width, color=HUMAN, label="opens by people")
    axes.bar(xs, machine, width, bottom=human, color=MACHINE, label="machine opens (prefetch)")
    clicks_axes = axes.twinx()  # clicks are a few percent of opens: their own scale
    clicks_axes.plot(xs, clicks, color=CLICKS, marker="o", label="clicks by people")
    clicks_axes.set_ylabel("clicks by people", color=CLICKS)
    clicks_axes.tick_params(axis="y", colors=CLICKS)
    clicks_axes.set_ylim(bottom=0, top=max([*clicks, 1]) * 1.15)
    clicks_axes.yaxis.get_major_locator().set_params(integer=True)
    if not report.get("send"):
        unique = [per_day[d].approx_unique_opens for d in days]
        error = report["approximate"]["relative_standard_error"]
        axes.plot(
            xs,
            unique,
            color=UNIQUE,
            linestyle="--",
            marker=".",
            label=f"≈ unique openers (±{error:.2%})",
        )
        _date_axis(axes)
        axes.set_xlabel("UTC day")
    else:
        axes.set_xticks([0], [report["send"]])
        axes.set_xlabel("send")
    if len(days) <= MAX_VALUE_LABELS:
        totals = [h + m for h, m in zip(human, machine, strict=True)]
        for x, total in zip(xs, totals, strict=True):
            if total:
                axes.annotate(f"{total:,}", (x, total), ha="center", va="bottom", fontsize="small")
    axes.set_ylabel("opens")
    axes.set_ylim(
        bottom=0, top=max([h + m for h, m in zip(human, machine, strict=True)] + [1]) * 1.15
    )
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.grid(axis="y", alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    more_handles, more_names = clicks_axes.get_legend_handles_labels()
    axes.legend(
        handles + more_handles,
        names + more_names,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncols=2,
        fontsize="small",
        frameon=False,
    )
    axes.set_title("opens and clicks per day")
    if not any(human) and not any(machine) and not any(clicks):
        axes.text(0.5, 0.5, "no events yet", transform=axes.transAxes, ha="center")


def _money(counts: dict[str, Any], currency: str) -> str:
    """An arm's click-credited revenue per recipient, when it earned any."""
    credited = counts.get("money", {}).get("click")
    if not credited or not credited["orders"]:
        return ""
    return f"; {currency} {credited['revenue_per_recipient']}/recipient"


def _date_axis(axes: Any) -> None:
    from matplotlib import dates

    locator = dates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = dates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)


def _by_arm(axes: Any, report: dict[str, Any]) -> None:
    labels, rates, notes = [], [], []
    currency = report.get("currency", "")
    for block, figures in report["blocks"].items():
        control = figures["control"]
        for arm, counts in figures["arms"].items():
            labels.append(f"{block} / {arm}" + (" (control)" if arm == control else ""))
            rates.append(100 * (counts["click_rate"] or 0.0))
            notes.append(
                f"{counts['clickers']:,} of {counts['recipients']:,}" + _money(counts, currency)
            )
    scope = "this send" if report.get("send") else "experiment to date"
    axes.set_title(f"click rate per recipient shown\n(exact, {scope})")
    if not labels:
        axes.text(0.5, 0.5, "no arms yet", transform=axes.transAxes, ha="center")
        axes.set_axis_off()
        return
    positions = list(range(len(labels)))[::-1]
    bars = axes.barh(positions, rates, color=HUMAN)
    axes.set_yticks(positions, labels)
    axes.bar_label(
        bars,
        [f"{rate:.1f}%  ({note})" for rate, note in zip(rates, notes, strict=True)],
        padding=3,
        fontsize="small",
    )
    room = 2.3 if any("/recipient" in note for note in notes) else 1.6  # the labels' width
    axes.set_xlim(0, max([*rates, 1.0]) * room)
    axes.set_xlabel("clickers per recipient (%)")
    axes.grid(axis="x", alpha=0.3)
