"""Exact distinct recipients per arm: counts at scale, click-to-open among openers only, sends,
and the experiment view agreeing with the report number for number."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.measurement.arm_counts import EXPERIMENT_SCOPE, load_script, send_scope
from models.measurement.stats import APPROX_RELATIVE_ERROR, CountedEvent
from models.newsletter.sends import SendCounts, plan_send
from models.storage.batch import Batch
from server.services import Services
from tests.factories import FakeClock, store_block, store_recipient, variant
from tests.newsletter_fixtures import item, store_newsletter
from tests.server.test_reports import APPLE_MPP, BROWSER, IOS_MAIL, click, open_image, report

AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def marking_script(services: Services) -> None:
    """These tests write counters straight through ``StatsStore.queue``, not the recorder, which
    loads the marking script when Redis has not got it."""
    load_script(services.redis)


def counted(recipient: str, event: str, kind: str, variant_id: str, **extra: Any) -> CountedEvent:
    return CountedEvent(
        campaign_id="daily",
        block_id="hero",
        variant=variant_id,
        recipient_id=recipient,
        event=event,
        client="apple_mail_ios",
        kind=kind,
        at=AT,
        **extra,
    )


def test_thousands_of_recipients_count_exactly_however_often_they_come_back(
    services: Services,
) -> None:
    batch = Batch(services.redis)
    for index in range(3000):
        arm = "a" if index % 3 else "b"
        person = f"p{index}"
        for _ in range(1 + index % 4):  # re-opens
            services.stats.queue(batch, counted(person, "open", "human", arm))
        if index % 7 == 0:
            services.stats.queue(batch, counted(person, "click", "human", arm))
            services.stats.queue(batch, counted(person, "click", "bot", arm))
    batch.execute()
    arms = services.stats.arms("daily")["hero"]
    assert (arms["a"].recipients, arms["b"].recipients) == (2000, 1000)
    assert (arms["a"].openers, arms["b"].openers) == (2000, 1000)
    clickers_b = len([i for i in range(0, 3000, 3) if i % 7 == 0])
    assert arms["b"].clickers == arms["b"].clickers_seen_opening == clickers_b
    assert arms["a"].clickers == len(range(0, 3000, 7)) - clickers_b


def test_a_clicker_never_seen_opening_is_not_in_click_to_open(services: Services) -> None:
    batch = Batch(services.redis)
    services.stats.queue(batch, counted("mpp", "open", "machine", "a"))  # Apple's prefetch only
    services.stats.queue(batch, counted("mpp", "click", "human", "a"))
    services.stats.queue(batch, counted("images-off", "click", "human", "a"))  # no open at all
    services.stats.queue(batch, counted("reader", "click", "human", "a"))  # clicks, then
    services.stats.queue(batch, counted("reader", "open", "human", "a"))  # loads the images
    services.stats.queue(batch, counted("looker", "open", "proxied_human", "a"))
    batch.execute()
    arm = services.stats.arms("daily")["hero"]["a"]
    assert (arm.recipients, arm.openers, arm.clickers, arm.clickers_seen_opening) == (4, 2, 3, 1)
    assert arm.click_rate.value == 3 / 4
    assert arm.click_to_open.value == 1 / 2


def test_a_send_has_its_own_exact_figures(services: Services) -> None:
    batch = Batch(services.redis)
    services.stats.queue(batch, counted("anna", "open", "human", "a", send="2026-11-23"))
    services.stats.queue(batch, counted("anna", "open", "human", "a", send="2026-11-24"))
    services.stats.queue(batch, counted("anna", "click", "human", "a", send="2026-11-24"))
    services.stats.queue(batch, counted("bram", "open", "human", "a", send="2026-11-24"))
    batch.execute()
    first = services.stats.arms("daily", send_scope("2026-11-23"))["hero"]["a"]
    second = services.stats.arms("daily", send_scope("2026-11-24"))["hero"]["a"]
    to_date = services.stats.arms("daily", EXPERIMENT_SCOPE)["hero"]["a"]
    assert (first.recipients, first.clickers) == (1, 0)
    assert (second.recipients, second.clickers) == (2, 1)
    assert (to_date.recipients, to_date.openers, to_date.clickers) == (2, 2, 1)


def test_the_experiment_view_and_the_report_agree_number_for_number(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a"), variant("b")], experiment={"holdout": 0.2})
    for index in range(40):
        rid = f"r{index}"
        store_recipient(services, rid)
        open_image(client, services, rid, APPLE_MPP if index % 2 else IOS_MAIL)
        open_image(client, services, rid, IOS_MAIL)
        if index % 3 == 0:
            click(client, services, rid, BROWSER)
    document = report(client, admin_headers)
    state = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    view = state.get_json()
    assert view["scope"] == document["scope"] == EXPERIMENT_SCOPE
    hero = document["blocks"]["hero"]
    assert {k: view[k] for k in ("control", "arms", "metric", "comparisons")} == hero
    assert sum(arm["recipients"] for arm in hero["arms"].values()) == 40
    assert sum(arm["clickers"] for arm in hero["arms"].values()) == 14
    assert hero["control"] == "holdout"
    assert [c["arm"] for c in hero["comparisons"]] == ["a", "b"]


def test_the_approximate_figures_are_labelled_with_their_error(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a")])
    store_recipient(services, "anna")
    open_image(client, services, "anna", IOS_MAIL)
    document = report(client, admin_headers)
    assert document["approximate"] == {
        "fields": ["approx_unique_opens", "approx_unique_clicks"],
        "method": "HyperLogLog",
        "relative_standard_error": APPROX_RELATIVE_ERROR,
    }
    (row,) = document["rows"]
    assert row["approx_unique_opens"] == 1
    assert row["openers"] is None  # a day carries no exact figure


def test_a_sends_marks_go_after_their_days_and_its_counts_stay(services: Services) -> None:
    batch = Batch(services.redis)
    services.stats.queue(batch, counted("anna", "open", "human", "a", send="2026-11-23"))
    batch.execute()
    day = 86400
    lifetimes = {name: services.redis.ttl(name) for name in services.redis.scan_iter("*:arm*")}
    send_marks = [n for n in lifetimes if ":send:2026-11-23:arm:" in n]
    kept = [n for n in lifetimes if n not in send_marks]  # counts, and the experiment's marks
    assert len(send_marks) == 1
    assert len(kept) == 3  # the experiment's marks and counts, the send's counts
    assert all(7 * day - 60 < lifetimes[n] <= 7 * day for n in send_marks)
    assert all(399 * day < lifetimes[n] <= 400 * day for n in kept)


def test_a_send_report_counts_its_blocks_against_the_recipients_sent(
    client: FlaskClient, services: Services, admin_headers: dict[str, str], clock: FakeClock
) -> None:
    store_block(services, [variant("a")])
    newsletter_send = plan_send(store_newsletter(services, [item("x")]), AT.date(), clock.now)
    services.sends.save(newsletter_send.model_copy(update={"counts": SendCounts(audience=10)}))
    batch = Batch(services.redis)
    for person in ("anna", "bram", "chloe"):
        services.stats.queue(batch, counted(person, "open", "machine", "a", send="2026-11-23"))
    services.stats.queue(batch, counted("anna", "click", "human", "a", send="2026-11-23"))
    batch.execute()
    document = report(client, admin_headers, send="2026-11-23")
    assert document["sent"] == 10
    hero = document["blocks"]["hero"]
    assert (hero["sent"], hero["unreached"]) == (10, 7)
    assert hero["click_rate_per_recipient_sent"] == 0.1
    assert hero["arms"]["a"]["click_rate"] == 1 / 3  # per recipient the arm reached
    assert "sent" not in report(client, admin_headers)["blocks"]["hero"]  # no send, no audience
