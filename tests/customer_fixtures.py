"""A small customer base with known RFM, lifecycle answers, worked out by hand.

Ten customers and one prospect, at the test clock's moment (2026-11-23 09:30 UTC). Orders are
(days ago, amount in EUR). The hand calculation (score = 1 + floor(5 × (worse + equal / 2) / 10),
counting the customers with a worse and with an equal value):

| who | recency d | R | orders | F | spent | M | F+M | segment | lifecycle |
|---|---|---|---|---|---|---|---|---|---|
| c01 | 2 | 5 | 5 | 5 | 500 | 5 | 10 | champions | active |
| c02 | 5 | 4 | 4 | 5 | 200 | 4 | 9 | champions | active |
| c03 | 3 | 5 | 1 | 1 | 400 | 5 | 6 | new | new_customer |
| c04 | 15 | 4 | 2 | 3 | 150 | 3 | 6 | loyal | active |
| c05 | 50 | 3 | 3 | 4 | 90 | 3 | 7 | loyal | active |
| c06 | 120 | 2 | 4 | 5 | 400 | 5 | 10 | at_risk | lapsing |
| c07 | 170 | 2 | 1 | 1 | 20 | 1 | 2 | hibernating | lapsing |
| c08 | 250 | 1 | 2 | 3 | 50 | 2 | 5 | lost | lapsed |
| c09 | 365 | 1 | 1 | 1 | 10 | 1 | 2 | lost | lapsed |
| c10 | 25 | 3 | 2 | 3 | 30 | 2 | 5 | potential_loyalist | active |
| p01 | - | - | 0 | - | - | - | - | - | prospect |

Frequencies 1,1,1,2,2,2,3,4,4,5: one order scores 1, two 3, three 4, four and five 5.
Spend 10,20,30,50,90,150,200,400,400,500: 1,1,2,2,3,3,4,5,5,5.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)

ORDERS: dict[str, list[tuple[int, int]]] = {
    "c01": [(2, 100), (10, 100), (20, 100), (40, 100), (60, 100)],
    "c02": [(5, 50), (35, 50), (65, 50), (95, 50)],
    "c03": [(3, 400)],
    "c04": [(15, 80), (45, 70)],
    "c05": [(50, 30), (100, 30), (150, 30)],
    "c06": [(120, 100), (200, 100), (300, 100), (400, 100)],
    "c07": [(170, 20)],
    "c08": [(250, 25), (500, 25)],
    "c09": [(365, 10)],
    "c10": [(25, 15), (300, 15)],
}
PROSPECTS = ("p01",)

EXPECTED_RFM: dict[str, tuple[int, int, int, str]] = {
    "c01": (5, 5, 5, "champions"),
    "c02": (4, 5, 4, "champions"),
    "c03": (5, 1, 5, "new"),
    "c04": (4, 3, 3, "loyal"),
    "c05": (3, 4, 3, "loyal"),
    "c06": (2, 5, 5, "at_risk"),
    "c07": (2, 1, 1, "hibernating"),
    "c08": (1, 3, 2, "lost"),
    "c09": (1, 1, 1, "lost"),
    "c10": (3, 3, 2, "potential_loyalist"),
}
EXPECTED_LIFECYCLE: dict[str, str] = {
    "c01": "active",
    "c02": "active",
    "c03": "new_customer",
    "c04": "active",
    "c05": "active",
    "c06": "lapsing",
    "c07": "lapsing",
    "c08": "lapsed",
    "c09": "lapsed",
    "c10": "active",
    "p01": "prospect",
}
EXPECTED_RFM_COUNTS = {
    "at_risk": 1,
    "champions": 2,
    "hibernating": 1,
    "lost": 2,
    "loyal": 2,
    "new": 1,
    "potential_loyalist": 1,
}
EXPECTED_LIFECYCLE_COUNTS = {
    "active": 5,
    "lapsed": 2,
    "lapsing": 2,
    "new_customer": 1,
    "prospect": 1,
}


def order_rows() -> list[dict[str, object]]:
    """The orders as Transaction documents (order ids ``<customer>-<n>``)."""
    return [
        {
            "recipient_id": rid,
            "order_id": f"{rid}-{n}",
            "at": (NOW - dt.timedelta(days=days_ago, hours=1)).isoformat(),
            "amount": str(Decimal(amount)),
            "currency": "EUR",
            "category": "city_trip" if n % 2 else "beach",
        }
        for rid, orders in ORDERS.items()
        for n, (days_ago, amount) in enumerate(orders)
    ]
