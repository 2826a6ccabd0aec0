"""Segment and RudderStack ``Order Completed`` events read as conversions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from models.conversions.inputs import from_track_event


def completed(**properties: Any) -> dict[str, Any]:
    return {
        "event": "Order Completed",
        "userId": "anna",
        "timestamp": "2026-11-23T11:02:00+01:00",
        "properties": {"order_id": "o-1", "currency": "EUR", **properties},
    }


@pytest.mark.parametrize(
    ("properties", "amount"),
    [
        ({"total": "30", "revenue": "20", "value": "10"}, Decimal(30)),
        ({"revenue": "20", "value": "10"}, Decimal(20)),
        ({"value": "10"}, Decimal(10)),
    ],
)
def test_the_value_is_total_else_revenue_else_value(
    properties: dict[str, Any], amount: Decimal
) -> None:
    found = from_track_event(completed(**properties), "bl_click")
    assert found is not None
    assert found.amount == amount


def test_a_products_id_is_its_product_id_else_its_sku() -> None:
    products = [{"product_id": "lisbon", "sku": "L-1"}, {"sku": "C-2", "quantity": 2}]
    found = from_track_event(completed(total="10", products=products), "bl_click")
    assert found is not None
    assert [(item.id, item.quantity) for item in found.items] == [("lisbon", 1), ("C-2", 2)]


def test_other_events_are_not_conversions() -> None:
    assert from_track_event({**completed(total="1"), "event": "Product Viewed"}, "bl_click") is None
