"""The report chart: matplotlib's drawing of a fixed report, held against reference images at
both sizes, and the route's sizes."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image

from server.report_chart import CHART_SIZES, ChartSize, render_chart
from server.services import Services
from tests.factories import store_block
from tests.renderers.reference import assert_matches_reference
from tests.server.chart_reports import A_WEEK, A_WEEK_WITH_MONEY


@pytest.mark.parametrize("size", CHART_SIZES)
def test_a_week_matches_its_reference(size: ChartSize) -> None:
    """Every day of the range on the axis (the 19th and 20th had no events), people's and
    machine opens stacked with values, clicks on their own scale, ≈ unique openers with their
    error, and each arm's exact click rate with its counts and the control named."""
    image = Image.open(io.BytesIO(render_chart(A_WEEK, size)))
    assert_matches_reference(image.convert("RGB"), f"report_chart_{size}")


def test_the_arms_revenue_per_recipient_shows_beside_their_click_rate() -> None:
    """An arm whose clicks led to orders carries its revenue per recipient shown; the holdout,
    without orders, does not."""
    image = Image.open(io.BytesIO(render_chart(A_WEEK_WITH_MONEY, "slide")))
    assert_matches_reference(image.convert("RGB"), "report_chart_money")


def test_an_empty_report_says_so() -> None:
    empty = {**A_WEEK, "rows": [], "blocks": {}}
    image = Image.open(io.BytesIO(render_chart(empty, "email")))
    assert_matches_reference(image.convert("RGB"), "report_chart_empty")


def test_the_route_draws_both_sizes_and_refuses_others(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [])
    url = "/api/v1/campaigns/daily/report.png"
    for size, pixels in (("email", (600, 720)), ("slide", (1600, 900))):
        response = client.get(url, headers=admin_headers, query_string={"size": size})
        assert response.mimetype == "image/png"
        assert Image.open(io.BytesIO(response.data)).size == pixels
    bad = client.get(url, headers=admin_headers, query_string={"size": "poster"})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["pointer"] == "/size"
