"""Campaign reports: daily rows, totals per block and variant, and exact experiment figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from models.campaigns.experiments import Metric
from models.campaigns.specs import Block
from models.conversions.money_counts import BlockMoney, Money, read_converter_revenue, read_money
from models.conversions.money_reports import (
    arm_money,
    campaign_incremental,
    item_money,
    money_totals,
    send_incremental,
)
from models.measurement.arm_counts import EXPERIMENT_SCOPE, ArmCounts, send_scope
from models.measurement.comparisons import Rate, compare_arms
from models.measurement.revenue_tests import MIXING_SD, RevenueSample, compare_revenue
from models.measurement.stats import (
    APPROX_RELATIVE_ERROR,
    FALLBACK_VARIANT,
    HOLDOUT_KIND,
    ReportRow,
    StatsStore,
    send_bucket,
)
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX

MAX_REPORT_DAYS = 400


@dataclass(frozen=True)
class SendGroups:
    """How many recipients a send went to, and how many it held out."""

    members: int
    holdout: int


PRIMARY_METRIC: Metric = "click_rate"
"""What arms are compared on unless the block's experiment names another metric: clickers per
recipient shown (opens are unreliable since Apple's Mail Privacy Protection)."""
APPROXIMATE = {
    "fields": ["approx_unique_opens", "approx_unique_clicks"],
    "method": "HyperLogLog",
    "relative_standard_error": APPROX_RELATIVE_ERROR,
}
"""How a report labels its approximate figures (trends over days; never compared)."""


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
    arms: Mapping[str, ArmCounts],
    block: Block | None,
    money: BlockMoney | None = None,
    revenues: Callable[[], Mapping[str, Sequence[float]]] | None = None,
) -> list[dict[str, Any]]:
    """Every arm with figures against the control, on the block's metric (its experiment's,
    else clickers per recipient shown): rates with ``compare_arms``, revenue per recipient with
    ``compare_revenue`` (which resamples the converters' revenues, read by ``revenues``). A
    comparison that cannot be made (the control has no figures yet, say) carries its reason."""
    control = control_arm(set(arms), block)
    if control is None:
        return []
    metric = metric_of(block)
    money = money or {}
    if metric == "revenue_per_recipient":
        spent = revenues() if revenues is not None else {}
        samples = {
            arm: RevenueSample(counts.recipients, tuple(spent.get(arm, ())))
            for arm, counts in arms.items()
        }
        spread = block.experiment.revenue_effect if block and block.experiment else MIXING_SD
        compared = compare_revenue(samples, control, mixing_sd=spread)
        return [{"metric": metric, **found} for found in compared]
    rates = {
        arm: counts.click_rate
        if metric == "click_rate"
        else Rate(money.get(("click", arm), Money()).converters, counts.recipients)
        for arm, counts in arms.items()
    }
    return [{"metric": metric, **asdict(comparison)} for comparison in compare_arms(rates, control)]


def _read_for(
    revenues: Callable[[str], Mapping[str, Sequence[float]]] | None, block_id: str
) -> Callable[[], Mapping[str, Sequence[float]]] | None:
    if revenues is None:
        return None
    return lambda: revenues(block_id)


def metric_of(block: Block | None) -> Metric:
    """What a block's arms are compared on: its experiment's metric, else the click rate."""
    if block is not None and block.experiment is not None:
        return block.experiment.metric
    return PRIMARY_METRIC


def arm_figures(
    arms: Mapping[str, Mapping[str, ArmCounts]],
    blocks: Mapping[str, Block],
    block_id: str | None = None,
    sent: int | None = None,
    money: Mapping[str, BlockMoney] | None = None,
    revenues: Callable[[str], Mapping[str, Sequence[float]]] | None = None,
) -> dict[str, Any]:
    """Exact figures per block and arm (with the money credited to each,
    ``models.conversions.money_reports``), the control each block is compared with, and the
    comparisons: the part of a report (and of a block's experiment view) an analyst decides on.
    For a send of ``sent`` recipients, each block also says how many it never reached (their
    email never asked for it, nor did they click: they have no arm) and its clickers per
    recipient sent."""
    figures: dict[str, Any] = {}
    money = money or {}
    for block_key, block_arms in sorted(arms.items()):
        if block_id is not None and block_key != block_id:
            continue
        block = blocks.get(block_key)
        block_money = money.get(block_key, {})
        figures[block_key] = {
            "control": control_arm(set(block_arms), block),
            "arms": {
                arm: {**counts.as_dict(), "money": arm_money(block_money, arm, counts)}
                for arm, counts in sorted(block_arms.items())
            },
            "metric": metric_of(block),
            "comparisons": comparisons_of(
                block_arms, block, block_money, _read_for(revenues, block_key)
            ),
        }
        if sent is not None:
            reached = sum(counts.recipients for counts in block_arms.values())
            clickers = sum(counts.clickers for counts in block_arms.values())
            figures[block_key].update(
                sent=sent,
                unreached=max(0, sent - reached),
                click_rate_per_recipient_sent=clickers / sent if sent else None,
            )
    return figures


def build_report(
    stats: StatsStore,
    campaign_id: str,
    start: dt.date,
    end: dt.date,
    block_id: str | None = None,
    send: str | None = None,
    blocks: Mapping[str, Block] | None = None,
    sent: int | None = None,
    *,
    groups: Mapping[str, SendGroups] | None = None,
    currency: str = "EUR",
) -> dict[str, Any]:
    """The report document: rows per day with approximate unique figures (or, for a ``send``,
    one row per block and variant of that send, its day the send's id, with exact ones),
    totals, and the exact arms and comparisons of each block (of the send, else of the
    experiment to date) against the control ``control_arm`` picks, knowing the campaign's
    ``blocks``; a send's blocks also against the ``sent`` recipients of its export. Money in
    ``currency``: per arm, in all, per newsletter item, and the incremental revenue of the
    sends whose members and holdout ``groups`` gives (by send id: the one send, or those of
    the range)."""
    buckets = [send_bucket(send)] if send else [d.isoformat() for d in day_range(start, end)]
    sent = sent if send else None
    rows = stats.report(campaign_id, buckets, block_id)
    scope = send_scope(send) if send else EXPERIMENT_SCOPE
    arms = stats.arms(campaign_id, scope)
    money = read_money(stats.redis, campaign_id, scope)
    if send:
        rows = [replace(row, day=send, exact=_arm(arms, row)) for row in rows]
    totals: dict[tuple[str, str], ReportRow] = {}
    for row in rows:
        key = (row.block_id, row.variant)
        totals.setdefault(key, ReportRow("total", row.block_id, row.variant)).fold(row)
    if send:
        for total in totals.values():
            total.exact = _arm(arms, total)
    else:
        stats.fill_approx_uniques(campaign_id, [(buckets, total) for total in totals.values()])
    return {
        "campaign_id": campaign_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "send": send,
        "approximate": APPROXIMATE,
        "rows": [r.as_dict() for r in rows],
        "totals": [totals[k].as_dict() for k in sorted(totals)],
        "scope": scope,
        "sent": sent,
        "blocks": arm_figures(
            arms,
            blocks or {},
            block_id,
            sent,
            money,
            lambda block: read_converter_revenue(stats.redis, campaign_id, scope, "click", block),
        ),
        "currency": currency,
        "money": money_totals(money, sent),
        "items": item_money(money, [b for b in money if b.startswith(SLOT_BLOCK_PREFIX)]),
        "incremental": _incremental(stats, campaign_id, send, money, groups or {}),
    }


def _incremental(
    stats: StatsStore,
    campaign_id: str,
    send: str | None,
    money: Mapping[str, BlockMoney],
    groups: Mapping[str, SendGroups],
) -> dict[str, Any] | None:
    """A send's incremental revenue against its holdout; for a range, each send's and their
    sum."""
    if send is not None:
        found = groups.get(send)
        return send_incremental(money, found.members, found.holdout) if found else None
    per_send = {
        send_id: send_incremental(
            read_money(stats.redis, campaign_id, send_scope(send_id)),
            found.members,
            found.holdout,
        )
        for send_id, found in sorted(groups.items())
    }
    return {"sends": per_send, "campaign": campaign_incremental(per_send)}


def _arm(arms: Mapping[str, Mapping[str, ArmCounts]], row: ReportRow) -> ArmCounts:
    return arms.get(row.block_id, {}).get(row.variant, ArmCounts())


def experiment_figures(stats: StatsStore, campaign_id: str, block: Block) -> dict[str, Any]:
    """A block's exact arms, control and comparisons to date: the same figures, number for
    number, as the block's part of a campaign report."""
    arms = stats.arms(campaign_id, EXPERIMENT_SCOPE).get(block.id, {})
    money = read_money(stats.redis, campaign_id, EXPERIMENT_SCOPE)
    figures: dict[str, Any] = arm_figures(
        {block.id: arms},
        {block.id: block},
        money=money,
        revenues=lambda key: read_converter_revenue(
            stats.redis, campaign_id, EXPERIMENT_SCOPE, "click", key
        ),
    )[block.id]
    return figures
