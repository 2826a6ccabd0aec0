"""Campaign reports: daily rows, totals per block and variant, and experiment comparisons."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, replace
from typing import Any

from models.campaigns.experiments import Comparison, compare
from models.measurement.stats import (
    FALLBACK_VARIANT,
    HOLDOUT_KIND,
    ReportRow,
    StatsStore,
    send_bucket,
)

MAX_REPORT_DAYS = 400


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from ``start`` to ``end`` inclusive."""
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def control_arm(variants: set[str]) -> str | None:
    """What the arms are compared with: the holdout, else the generic fallback."""
    for candidate in (HOLDOUT_KIND, FALLBACK_VARIANT):
        if candidate in variants:
            return candidate
    return None


def build_report(
    stats: StatsStore,
    campaign_id: str,
    start: dt.date,
    end: dt.date,
    block_id: str | None = None,
    send: str | None = None,
) -> dict[str, Any]:
    """The report document: rows per day (or, for a ``send``, one row per block and variant
    of that send, its day the send's id), totals and comparisons per block."""
    buckets = [send_bucket(send)] if send else [d.isoformat() for d in day_range(start, end)]
    rows = stats.report(campaign_id, buckets, block_id)
    if send:
        rows = [replace(row, day=send) for row in rows]
    totals: dict[tuple[str, str], ReportRow] = {}
    for row in rows:
        total = totals.setdefault(
            (row.block_id, row.variant), ReportRow("total", row.block_id, row.variant)
        )
        for name in (
            "opens",
            "machine_opens",
            "unknown_opens",
            "human_opens",
            "clicks",
            "bot_clicks",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        for client, counts in row.by_client.items():
            into = total.by_client.setdefault(client, {"opens": 0, "clicks": 0})
            into["opens"] += counts["opens"]
            into["clicks"] += counts["clicks"]
    _unique_over_range(stats, campaign_id, buckets, list(totals.values()))
    by_block: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for (block, variant), total in totals.items():
        by_block[block][variant] = (total.unique_opens, total.unique_clicks)
    comparisons: dict[str, list[dict[str, Any]]] = {}
    for block, arms in sorted(by_block.items()):
        control = control_arm(set(arms))
        if control is None:
            continue
        comparisons[block] = [
            asdict(compare(arm, control, arms)) for arm in sorted(arms) if arm != control
        ]
    return {
        "campaign_id": campaign_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "send": send,
        "rows": [r.as_dict() for r in rows],
        "totals": [totals[k].as_dict() for k in sorted(totals)],
        "comparisons": comparisons,
    }


def _unique_over_range(
    stats: StatsStore, campaign_id: str, buckets: list[str], totals: list[ReportRow]
) -> None:
    """Unique counts over the whole range (a recipient opening on two days counts once)."""
    stats.fill_uniques(campaign_id, [(buckets, total) for total in totals])


def block_comparisons(stats: StatsStore, campaign_id: str, block_id: str) -> list[Comparison]:
    """All-time human figures of a block's variants against its fallback (for the bandit view)."""
    arms = stats.totals(campaign_id, block_id)
    control = control_arm(set(arms))
    if control is None:
        return []
    return [compare(arm, control, arms) for arm in sorted(arms) if arm != control]
