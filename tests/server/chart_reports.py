"""Fixed report documents for the chart tests (no Redis: the chart draws what it is given)."""

from __future__ import annotations

from typing import Any

from models.measurement.reports import APPROXIMATE
from models.measurement.stats import EXACT_FIELDS, SUMMED


def row(
    day: str, variant: str, opens: int, machine: int, clicks: int, unique: int
) -> dict[str, Any]:
    counts = dict.fromkeys(SUMMED, 0)
    counts.update(opens=opens, machine_opens=machine, human_opens=opens - machine, clicks=clicks)
    return {
        "day": day,
        "block": "hero",
        "variant": variant,
        **counts,
        "approx_unique_opens": unique,
        "approx_unique_clicks": clicks,
        **dict.fromkeys(EXACT_FIELDS),
        "by_client": {},
    }


def arm(recipients: int, openers: int, clickers: int) -> dict[str, Any]:
    return {
        "recipients": recipients,
        "openers": openers,
        "clickers": clickers,
        "clickers_seen_opening": clickers,
        "click_rate": clickers / recipients,
        "click_to_open_rate": clickers / openers,
    }


A_WEEK: dict[str, Any] = {
    "campaign_id": "daily-newsletter",
    "from": "2026-11-17",
    "to": "2026-11-23",
    "send": None,
    "approximate": APPROXIMATE,
    "rows": [  # no events on the 19th and the 20th
        row("2026-11-17", "city-trip-with-a-long-name", 820, 410, 31, 640),
        row("2026-11-17", "beach", 790, 400, 22, 610),
        row("2026-11-18", "city-trip-with-a-long-name", 505, 260, 19, 400),
        row("2026-11-21", "beach", 1210, 600, 40, 950),
        row("2026-11-22", "beach", 300, 140, 9, 250),
        row("2026-11-23", "city-trip-with-a-long-name", 980, 500, 45, 760),
    ],
    "totals": [],
    "scope": "experiment",
    "blocks": {
        "hero": {
            "control": "holdout",
            "arms": {
                "beach": arm(2100, 1200, 71),
                "city-trip-with-a-long-name": arm(2050, 1180, 95),
                "holdout": arm(510, 300, 12),
            },
            "comparisons": [],
        }
    },
}


def with_money(
    arm_figures: dict[str, Any], orders: int, revenue: str, per_recipient: str
) -> dict[str, Any]:
    """An arm with click-credited money."""
    zero = {
        "orders": 0,
        "converters": 0,
        "revenue": "0.00",
        "conversion_rate": 0.0,
        "revenue_per_recipient": "0.00",
        "revenue_per_thousand": "0.00",
    }
    click = {
        **zero,
        "orders": orders,
        "converters": orders,
        "revenue": revenue,
        "revenue_per_recipient": per_recipient,
    }
    return {
        **arm_figures,
        "money": {"click": click, "view": zero, "late_click": zero, "late_view": zero},
    }


A_WEEK_WITH_MONEY = {
    **A_WEEK,
    "currency": "EUR",
    "blocks": {
        "hero": {
            **A_WEEK["blocks"]["hero"],
            "arms": {
                "beach": with_money(arm(2100, 1200, 71), 12, "3456.00", "1.65"),
                "city-trip-with-a-long-name": with_money(
                    arm(2050, 1180, 95), 20, "6150.00", "3.00"
                ),
                "holdout": with_money(arm(510, 300, 12), 0, "0.00", "0.00"),
            },
        }
    },
}
