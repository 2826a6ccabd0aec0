"""Campaign reports: daily rows, totals per block and variant, and experiment comparisons."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import asdict, replace
from typing import Any

from models.campaigns.experiments import Totals
from models.campaigns.specs import Block
from models.measurement.comparisons import Rate, compare_arms
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


def control_arm(arms: Collection[str], block: Block | None = None) -> str | None:
    """What a block's arms are compared with: the experiment's named control, else the holdout
    when the experiment holds recipients out, else the block's first-created variant; for a
    block not known (a newsletter slot), the holdout or else the generic fallback if they have
    figures in ``arms``; None when there is nothing to compare with."""
    if block is not None:
        experiment = block.experiment
        if experiment is not None and experiment.control is not None:
            return experiment.control
        if experiment is not None and experiment.holdout > 0:
            return HOLDOUT_KIND
        first = block.first_created([variant.id for variant in block.variants])
        if first is not None:
            return first
    for candidate in (HOLDOUT_KIND, FALLBACK_VARIANT):
        if candidate in arms:
            return candidate
    return None


def comparisons_of(
    arms: Mapping[str, tuple[int, int]], block: Block | None
) -> list[dict[str, Any]]:
    """Every arm with figures against the control, on unique clicks per unique open; a
    comparison that cannot be made (the control has no figures yet, say) carries its reason."""
    control = control_arm(set(arms), block)
    if control is None:
        return []
    rates = {arm: Rate(successes=clicks, trials=opens) for arm, (opens, clicks) in arms.items()}
    return [asdict(comparison) for comparison in compare_arms(rates, control)]


def build_report(
    stats: StatsStore,
    campaign_id: str,
    start: dt.date,
    end: dt.date,
    block_id: str | None = None,
    send: str | None = None,
    blocks: Mapping[str, Block] | None = None,
) -> dict[str, Any]:
    """The report document: rows per day (or, for a ``send``, one row per block and variant
    of that send, its day the send's id), totals and comparisons per block (against the
    control ``control_arm`` picks, knowing the campaign's ``blocks``)."""
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
    for block_key, arms in sorted(by_block.items()):
        found = comparisons_of(arms, (blocks or {}).get(block_key))
        if found:
            comparisons[block_key] = found
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


def block_comparisons(
    stats: StatsStore, campaign_id: str, block: Block, totals: Totals | None = None
) -> list[dict[str, Any]]:
    """All-time human figures of a block's variants against its control (the experiment
    view): ``totals`` as read, else read now."""
    arms = totals if totals is not None else stats.totals(campaign_id, block.id)
    return comparisons_of(arms, block)
