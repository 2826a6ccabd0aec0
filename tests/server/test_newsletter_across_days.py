"""The daily newsletter across three days, as a new user would try it: an ignored item fades,
a clicked and bought item is credited and never returns, a sold-out item drops out of an
unopened email (and out of an opened one), and revenue reads per block, variant and item."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from models.newsletter.popularity import ItemFigures, read_popularity
from models.storage import keys
from server.services import Services
from tests.factories import AdminApi, FakeClock, landing
from tests.newsletter_fixtures import (
    click_url,
    item,
    record_send,
    slot_url,
    store_newsletter,
    store_subscriber,
)
from tests.user_agents import BROWSER, IOS_MAIL

AFFINITIES = {"affinity:city": 0.9, "affinity:beach": 0.6, "affinity:ski": 0.3}


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def item_of(redirect: Any) -> str:
    return landing(redirect).rsplit("/", 1)[1]


def test_three_days_of_the_daily_newsletter(
    client: FlaskClient, services: Services, api: AdminApi, clock: FakeClock
) -> None:
    store_newsletter(
        services,
        [item("lisbon", "city"), item("crete", "beach"), item("alps", "ski")],
        slots=1,
    )
    for rid in ("anna", "bram"):
        store_subscriber(services, rid, scores=AFFINITIES)

    def send(day: int) -> str:
        """The day's send, as its export records it (at 10:00); the clock moves an hour on."""
        clock.now = dt.datetime(2026, 11, day, 9, 0, tzinfo=dt.UTC)
        recorded = record_send(services, dt.date(2026, 11, day), ["anna", "bram"])
        clock.advance(hours=1)  # a click right after the send would be a link scanner's
        return recorded.id

    # day 1: Anna is shown Lisbon, and ignores it
    assert shown_image(client, services, "anna", send(23)) == "lisbon"

    # day 2: Lisbon has faded (0.9 × 0.5 < 0.6): Crete; she clicks it and books it
    day2 = send(24)
    assert shown_image(client, services, "anna", day2) == "crete"
    clicked = client.get(click_url(services, "anna", 1, day2), headers=BROWSER)
    assert item_of(clicked) == "crete"
    token = parse_qs(urlsplit(clicked.headers["Location"]).query)["bl_click"][0]
    clock.advance(hours=1)
    pixel = client.get(
        "/cv.gif", query_string={"o": "b-1", "a": "649", "c": "EUR", "t": token, "i": "crete"}
    )
    assert pixel.headers["X-Blanco-Conversion"] == "recorded"

    # day 3: Crete was bought (never again); Lisbon, faded once, still beats Alps
    day3 = send(25)
    assert shown_image(client, services, "anna", day3) == "lisbon"

    # Lisbon sells out: Bram's unopened email of day 3 never shows it, Anna's re-open neither
    sold_out = {
        "id": "lisbon",
        "title": "Trip lisbon",
        "url": "https://shop.example/items/lisbon",
        "category": "city",
        "stock": 0,
    }
    assert api.put("/feeds/trips/items/lisbon", json=sold_out).status_code == 200
    assert shown_image(client, services, "bram", day3) == "crete"
    reopened = client.get(slot_url(services, "anna", 1, day3), headers=IOS_MAIL)
    assert reopened.headers["X-Blanco-Fallback"] == "item unavailable"

    # revenue per block, variant and item
    report = api.get("/campaigns/daily/report", query_string={"send": day2}).get_json()
    assert report["blocks"]["slot-1"]["arms"]["crete"]["money"]["click"]["revenue"] == "649.00"
    assert report["items"]["crete"]["click"] == {"orders": 1, "revenue": "649.00"}
    to_date = api.get("/campaigns/daily/report").get_json()
    assert to_date["items"]["crete"]["click"]["revenue"] == "649.00"


def shown_image(client: FlaskClient, services: Services, rid: str, send: str) -> str:
    """The item slot 1 of ``send`` shows ``rid`` (opened as a person): where its click goes,
    read without clicking (the slot's stored ranking)."""
    image = client.get(slot_url(services, rid, 1, send), headers=IOS_MAIL)
    assert image.status_code == 200
    assert "X-Blanco-Fallback" not in image.headers
    ranking = services.redis.hget(keys.rankings(rid), f"daily/{send}")
    assert ranking is not None
    return str(json.loads(ranking)["items"][0][0])


def test_items_popular_among_a_persona_rise_for_its_newcomers(
    make_app: Any, services: Services, clock: FakeClock
) -> None:
    """Sun lovers click Crete, city lovers Lisbon (exact counts per persona); a newcomer of
    each persona, equally fond of both on their scores, is shown their persona's favourite
    first, by a worker that reads the figures afresh."""
    store_newsletter(services, [item("lisbon", "city"), item("crete", "beach")], slots=2)
    even = {"affinity:city": 0.5, "affinity:beach": 0.5}
    first = make_app().test_client()
    send = "2026-11-23"
    clock.advance(hours=1)
    for persona, favourite in (("sun", "crete"), ("town", "lisbon")):
        for n in range(20):
            rid = f"{persona}{n}"
            store_subscriber(services, rid, scores=even, persona=persona)
            for position in (1, 2):  # the email client loads both slots
                opened = first.get(slot_url(services, rid, position, send), headers=IOS_MAIL)
                assert opened.status_code == 200
            ranking = json.loads(services.redis.hget(keys.rankings(rid), f"daily/{send}") or "{}")
            slot = 1 + [i for i, _ in ranking["items"]].index(favourite)
            clicked = first.get(click_url(services, rid, slot, send), headers=BROWSER)
            assert item_of(clicked) == favourite

    sun = read_popularity(services.redis, "daily", "sun")
    assert sun.items["crete"] == ItemFigures(shown=20, clickers=20)
    assert sun.items["lisbon"] == ItemFigures(shown=20, clickers=0)

    fresh = make_app().test_client()  # a worker that has not read the figures yet
    for persona, favourite in (("sun", "crete"), ("town", "lisbon")):
        for n in range(3):  # a tie broken by chance would fail one of six
            newcomer = f"new-{persona}-{n}"
            store_subscriber(services, newcomer, scores=even, persona=persona)
            fresh.get(slot_url(services, newcomer, 1, send), headers=IOS_MAIL)
            stored = services.redis.hget(keys.rankings(newcomer), f"daily/{send}")
            assert json.loads(stored or "{}")["items"][0][0] == favourite, newcomer
