"""Money in reports: per arm, per item, and the incremental revenue of a send's holdout.

Rates are per recipient the arm was shown to (``models.measurement.arm_counts``):
``conversion_rate`` is converters per recipient, ``revenue_per_recipient`` the credited revenue
per recipient, ``revenue_per_thousand`` the same per thousand recipients. Click-through
(``click``), view-through (``view``) and the late rows (``late_click``, ``late_view``: a touch
more than ``BLANCO_LATE_OPEN_DAYS`` after its send) are reported apart; an order is credited to
one of them only.

A send's holdout (recipients its export left out at random) gives incremental revenue: the
revenue per recipient of its members, all orders within the click window after the send
whether credited or not, minus that of its holdout, with a 95% confidence interval (Welch's
normal approximation over per-recipient revenue, recipients without orders counting as 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from models.conversions.conversions import HOLDOUT_ARM, MEMBERS_ARM, SEND_BLOCK
from models.conversions.money_counts import BlockMoney, Money
from models.measurement.arm_counts import ArmCounts

BASES = ("click", "view", "late_click", "late_view")
Z_95 = 1.959963984540054


def _money(value: Decimal | float) -> str:
    return f"{Decimal(value):.2f}" if isinstance(value, Decimal) else f"{value:.2f}"


def money_figures(money: Money, recipients: int) -> dict[str, Any]:
    """One arm's money under one basis, with its rates per recipient shown."""
    revenue = money.revenue
    return {
        "orders": money.orders,
        "converters": money.converters,
        "revenue": _money(revenue),
        "conversion_rate": money.converters / recipients if recipients else None,
        "revenue_per_recipient": _money(revenue / recipients) if recipients else None,
        "revenue_per_thousand": _money(revenue * 1000 / recipients) if recipients else None,
    }


def arm_money(block_money: BlockMoney, arm: str, counts: ArmCounts) -> dict[str, Any]:
    """An arm's money under every basis."""
    return {
        basis: money_figures(block_money.get((basis, arm), Money()), counts.recipients)
        for basis in BASES
    }


def money_totals(money: Mapping[str, BlockMoney], sent: int | None = None) -> dict[str, Any]:
    """Orders and revenue per basis over every block (a send's exposure left out); for a send
    of ``sent`` emails, also revenue per thousand emails sent."""
    totals: dict[str, Any] = {}
    for basis in BASES:
        found = [
            m
            for block, arms in money.items()
            if block != SEND_BLOCK
            for (b, _), m in arms.items()
            if b == basis
        ]
        revenue = sum((m.revenue for m in found), Decimal(0))
        totals[basis] = {"orders": sum(m.orders for m in found), "revenue": _money(revenue)}
        if sent:
            totals[basis]["revenue_per_thousand_sent"] = _money(revenue * 1000 / sent)
    return totals


def item_money(money: Mapping[str, BlockMoney], slot_blocks: Iterable[str]) -> dict[str, Any]:
    """Per newsletter item (an arm of the slots), orders and revenue per basis, over every
    slot position."""
    slots = set(slot_blocks)
    items: dict[str, dict[str, list[Money]]] = {}
    for block, arms in money.items():
        if block not in slots:
            continue
        for (basis, arm), found in arms.items():
            items.setdefault(arm, {}).setdefault(basis, []).append(found)
    return {
        item: {
            basis: {
                "orders": sum(m.orders for m in by_basis.get(basis, [])),
                "revenue": _money(sum((m.revenue for m in by_basis.get(basis, [])), Decimal(0))),
            }
            for basis in BASES
        }
        for item, by_basis in sorted(items.items())
    }


def send_incremental(money: Mapping[str, BlockMoney], members: int, holdout: int) -> dict[str, Any]:
    """The incremental revenue of a send against its holdout (see the module docstring)."""
    exposed = money.get(SEND_BLOCK, {})
    member_money = exposed.get(("exposed", MEMBERS_ARM), Money())
    holdout_money = exposed.get(("exposed", HOLDOUT_ARM), Money())
    found: dict[str, Any] = {
        "members": members,
        "holdout": holdout,
        "member_revenue": _money(member_money.revenue),
        "holdout_revenue": _money(holdout_money.revenue),
        "member_orders": member_money.orders,
        "holdout_orders": holdout_money.orders,
    }
    member_stats = member_money.mean_and_variance(members)
    holdout_stats = holdout_money.mean_and_variance(holdout)
    if member_stats is None or holdout_stats is None:
        reason = "the send held nobody out" if holdout == 0 else "too few recipients"
        return {**found, "per_recipient": None, "total": None, "reason": reason}
    (m_mean, m_var), (h_mean, h_var) = member_stats, holdout_stats
    lift = m_mean - h_mean
    error = math.sqrt(m_var / members + h_var / holdout)
    return {
        **found,
        "member_revenue_per_recipient": round(m_mean, 4),
        "holdout_revenue_per_recipient": round(h_mean, 4),
        "per_recipient": round(lift, 4),
        "per_recipient_ci95": [round(lift - Z_95 * error, 4), round(lift + Z_95 * error, 4)],
        "total": round(lift * members, 2),
        "total_ci95": [
            round((lift - Z_95 * error) * members, 2),
            round((lift + Z_95 * error) * members, 2),
        ],
        "standard_error": error * members,
        "reason": None,
    }


def campaign_incremental(per_send: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The sends' incremental revenue added up, its 95% interval from their independent
    errors (only sends with a holdout that measured count)."""
    measured = {s: f for s, f in per_send.items() if f.get("total") is not None}
    if not measured:
        return {"sends": 0, "total": None, "total_ci95": None}
    total = sum(f["total"] for f in measured.values())
    error = math.sqrt(sum(f["standard_error"] ** 2 for f in measured.values()))
    return {
        "sends": len(measured),
        "total": round(total, 2),
        "total_ci95": [round(total - Z_95 * error, 2), round(total + Z_95 * error, 2)],
    }
