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


A_WEEK = {
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
