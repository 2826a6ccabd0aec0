"""Money in reports: per send, block, variant, slot and item; late touches in their own row;
a send's holdout giving incremental revenue with its interval; the CSV's money columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import statistics
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.newsletter.popularity import read_popularity
from server.services import Services
from tests.factories import AdminApi, FakeClock, store_block, store_recipient, variant
from tests.newsletter_fixtures import click_url, item, record_send, store_newsletter
from tests.user_agents import BROWSER

SEND_DAY = dt.date(2026, 11, 23)
SEND = SEND_DAY.isoformat()


@pytest.fixture
def api(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with an ingest key."""
    return AdminApi(client, ingest_headers)


def order(api: AdminApi, rid: str, order_id: str, amount: str) -> dict[str, Any]:
    response = api.post(
        "/conversions",
        json={"recipient_id": rid, "order_id": order_id, "amount": amount, "currency": "EUR"},
    )
    assert response.status_code == 201, response.get_json()
    credited: dict[str, Any] = response.get_json()
    return credited


def report(client: FlaskClient, headers: dict[str, str], **query: str) -> Any:
    response = client.get("/api/v1/campaigns/daily/report", headers=headers, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json() if query.get("format") != "csv" else response.get_data(as_text=True)


def test_a_holdout_gives_the_sends_incremental_revenue_with_its_interval(
    client: FlaskClient,
    services: Services,
    api: AdminApi,
    clock: FakeClock,
    admin_headers: dict[str, str],
) -> None:
    store_block(services, [variant("hot")])
    members = [f"m{n}" for n in range(10)]
    holdout = [f"h{n}" for n in range(10)]
    for rid in (*members, *holdout, "stranger"):
        store_recipient(services, rid)
    record_send(services, SEND_DAY, members, holdout)
    clock.advance(hours=3)
    clicked = client.get(
        "/c/daily/hero",
        query_string={"r": services.signer.sign("m0"), "s": SEND},
        headers=BROWSER,
    )
    assert clicked.status_code == 302
    credited = order(api, "m0", "o-1", "100")  # credited to the click, and exposed all the same
    assert credited["attribution"]["basis"] == "click"
    order(api, "m1", "o-2", "50")
    order(api, "h0", "o-3", "50")
    order(api, "stranger", "o-4", "500")  # in neither group: not counted
    clock.advance(days=8)
    order(api, "m2", "o-5", "900")  # after the click window: not counted

    sent = report(client, admin_headers, send=SEND)
    assert sent["money"]["click"]["revenue"] == "100.00"
    found = sent["incremental"]
    member_values = [100.0, 50.0] + [0.0] * 8
    holdout_values = [50.0] + [0.0] * 9
    lift = statistics.mean(member_values) - statistics.mean(holdout_values)
    error = math.sqrt(
        statistics.variance(member_values) / 10 + statistics.variance(holdout_values) / 10
    )
    assert (found["members"], found["holdout"]) == (10, 10)
    assert (found["member_revenue"], found["holdout_revenue"]) == ("150.00", "50.00")
    assert found["member_revenue_per_recipient"] == pytest.approx(15.0)
    assert found["holdout_revenue_per_recipient"] == pytest.approx(5.0)
    assert found["per_recipient"] == pytest.approx(lift)
    assert [round(v, 2) for v in found["per_recipient_ci95"]] == [-13.10, 33.10]  # docs
    low, high = found["per_recipient_ci95"]
    assert low == pytest.approx(lift - 1.959964 * error, abs=1e-3)
    assert high == pytest.approx(lift + 1.959964 * error, abs=1e-3)
    assert found["total"] == pytest.approx(lift * 10)
    ranged = report(client, admin_headers, **{"from": "2026-11-20", "to": "2026-12-05"})
    assert ranged["incremental"]["sends"][SEND]["total"] == found["total"]
    assert ranged["incremental"]["campaign"]["sends"] == 1
    assert ranged["incremental"]["campaign"]["total"] == pytest.approx(lift * 10)


def test_a_send_without_a_holdout_says_why_it_has_no_increment(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("hot")])
    record_send(services, SEND_DAY, ["anna", "bram"])
    found = report(client, admin_headers, send=SEND)["incremental"]
    assert (found["total"], found["reason"]) == (None, "the send held nobody out")


def newsletter_with_send(services: Services) -> None:
    store_block(services, [variant("hot")])
    store_newsletter(
        services,
        [item("lisbon", "city_trip"), item("crete", "beach"), item("alps", "ski")],
        slots=2,
        blocks=["hero"],
    )
    for rid, affinity in (("anna", "beach"), ("bram", "city_trip")):
        store_recipient(
            services,
            rid,
            {"first_name": rid.title(), "consent_email": True},
            {f"affinity:{affinity}": 0.9},
        )
    record_send(services, SEND_DAY, ["anna", "bram"])


def test_slot_money_is_reported_per_position_and_per_item_and_late_touches_apart(
    client: FlaskClient,
    services: Services,
    api: AdminApi,
    clock: FakeClock,
    admin_headers: dict[str, str],
) -> None:
    newsletter_with_send(services)
    clock.advance(hours=2)  # a click right after the send would be a link scanner's
    first = client.get(click_url(services, "anna", 1, SEND), headers=BROWSER)
    assert first.status_code == 302
    order(api, "anna", "o-1", "649")
    clock.advance(days=8)  # a click more than a week after its send is late
    client.get(click_url(services, "bram", 1, SEND), headers=BROWSER)
    order(api, "bram", "o-2", "289")

    sent = report(client, admin_headers, send=SEND)
    slot = sent["blocks"]["slot-1"]["arms"]
    (anna_item,) = [arm for arm, f in slot.items() if f["money"]["click"]["orders"]]
    (bram_item,) = [arm for arm, f in slot.items() if f["money"]["late_click"]["orders"]]
    assert slot[anna_item]["money"]["click"]["revenue"] == "649.00"
    assert slot[bram_item]["money"]["late_click"]["revenue"] == "289.00"
    # two emails sent: 649.00 per 2 emails is 324,500.00 per thousand
    assert sent["money"]["click"] == {
        "orders": 1,
        "revenue": "649.00",
        "revenue_per_thousand_sent": "324500.00",
    }
    assert sent["money"]["late_click"]["revenue"] == "289.00"
    assert sent["items"][anna_item]["click"] == {"orders": 1, "revenue": "649.00"}
    assert sent["items"][bram_item]["late_click"] == {"orders": 1, "revenue": "289.00"}
    assert sent["currency"] == "EUR"
    to_date = report(client, admin_headers)
    assert to_date["money"]["click"] == {"orders": 1, "revenue": "649.00"}  # to date, too

    table = list(
        csv.DictReader(io.StringIO(report(client, admin_headers, send=SEND, format="csv")))
    )
    rows = {(r["block"], r["variant"]): r for r in table}
    assert rows[("slot-1", anna_item)]["revenue"] == "649.00"
    assert rows[("slot-1", anna_item)]["orders"] == "1"
    assert rows[("slot-1", bram_item)]["late_revenue"] == "289.00"
    days = list(csv.DictReader(io.StringIO(report(client, admin_headers, format="csv"))))
    assert all(row["revenue"] == "" for row in days)  # money is per send and to date


def test_an_order_counts_among_the_buyers_persona_whatever_source_set_it(
    client: FlaskClient, services: Services, api: AdminApi, clock: FakeClock
) -> None:
    newsletter_with_send(services)
    profile = {"attributes": {"persona": "sun"}, "source": "crm"}  # stored with its source tag
    assert api.put("/recipients/anna/profile", json=profile).status_code == 200
    clock.advance(hours=2)
    assert client.get(click_url(services, "anna", 1, SEND), headers=BROWSER).status_code == 302
    order(api, "anna", "o-1", "649")
    among_sun = read_popularity(services.redis, "daily", "sun")
    assert [item for item, f in among_sun.items.items() if f.converters] != []


def test_the_experiment_view_shows_the_same_money_as_the_report(
    client: FlaskClient, services: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    client.get("/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER)
    order(api, "anna", "o-1", "10")
    view = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    assert view.get_json()["arms"] == report(client, admin_headers)["blocks"]["hero"]["arms"]
    assert view.get_json()["arms"]["hot"]["money"]["click"]["revenue"] == "10.00"


@pytest.mark.parametrize("metric", ["conversion_rate", "revenue_per_recipient"])
def test_a_block_is_compared_on_its_experiments_metric(
    client: FlaskClient,
    services: Services,
    api: AdminApi,
    clock: FakeClock,
    admin_headers: dict[str, str],
    metric: str,
) -> None:
    store_block(
        services,
        [variant("a", weight=1), variant("b", weight=1)],
        experiment={"mode": "split", "metric": metric, "control": "a"},
    )
    buyers = {"a": 0, "b": 0}
    for n in range(40):
        rid = f"r{n}"
        store_recipient(services, rid)
        token = {"r": services.signer.sign(rid)}
        clicked = client.get("/c/daily/hero", query_string=token, headers=BROWSER)
        arm = "a" if "/a?" in clicked.headers["Location"] else "b"
        if n % 3 == 0:  # a third of each arm buys, arm b twice as much
            buyers[arm] += 1
            order(api, rid, f"o-{n}", "20" if arm == "a" else "40")
    hero = report(client, admin_headers)["blocks"]["hero"]
    assert hero["metric"] == metric
    (found,) = hero["comparisons"]
    assert (found["metric"], found["arm"], found["control"]) == (metric, "b", "a")
    if metric == "conversion_rate":
        assert (
            found["arm_successes"]
            == buyers["b"]
            == hero["arms"]["b"]["money"]["click"]["converters"]
        )
        assert found["arm_trials"] == hero["arms"]["b"]["recipients"]
    else:
        assert found["method"] == "bootstrap"
        assert found["arm_mean"] == pytest.approx(
            40 * buyers["b"] / hero["arms"]["b"]["recipients"]
        )
        assert found["arm_converters"] == buyers["b"]


def test_the_revenue_tests_spread_is_the_experiments_own(
    client: FlaskClient, services: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    """The always-valid p-value mixes over the experiment's `revenue_effect`."""

    def experiment(effect: float) -> None:
        store_block(
            services,
            [variant("a", weight=1), variant("b", weight=1)],
            experiment={
                "metric": "revenue_per_recipient",
                "control": "a",
                "revenue_effect": effect,
            },
        )

    experiment(0.5)
    for n in range(40):
        rid = f"r{n}"
        store_recipient(services, rid)
        clicked = client.get(
            "/c/daily/hero", query_string={"r": services.signer.sign(rid)}, headers=BROWSER
        )
        if n % 3 == 0:
            order(api, rid, f"o-{n}", "20" if "/a?" in clicked.headers["Location"] else "40")
    found = {}
    for effect in (0.5, 5000.0):
        experiment(effect)
        (compared,) = report(client, admin_headers)["blocks"]["hero"]["comparisons"]
        found[effect] = compared["always_valid_p_value"]
    assert found[0.5] != found[5000.0]
