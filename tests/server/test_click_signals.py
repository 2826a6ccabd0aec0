"""Link scanners told by context: a click right after the send, and every link of an email
clicked at once, count as bot clicks (and never fix a slot's ranking)."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.newsletter.sends import plan_send
from models.storage import keys
from server.services import Services
from tests.factories import FakeClock, landing, store_recipient
from tests.newsletter_fixtures import click_url, item, store_newsletter

SEND = "2026-11-23"
SEND_TIME = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # 10:00 in Amsterdam
BROWSER = {
    "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}


def click_kinds(redis_client: redis.Redis) -> list[str]:
    return [
        f["kind"] for _, f in campaign_event_entries(redis_client, "daily") if f["type"] == "click"
    ]


@pytest.fixture
def sent(services: Services, clock: FakeClock) -> None:
    newsletter = store_newsletter(
        services, [item("a", "x"), item("b", "y"), item("c", "z")], slots=3
    )
    services.sends.start(plan_send(newsletter, dt.date(2026, 11, 23), clock.now))
    store_recipient(services, "anna", {"consent_email": True})


@pytest.mark.usefixtures("sent")
@pytest.mark.parametrize(("seconds", "kind"), [(3, "bot"), (9.5, "bot"), (11, "human")])
def test_a_click_right_after_the_send_is_a_scanners(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    clock: FakeClock,
    seconds: float,
    kind: str,
) -> None:
    clock.now = SEND_TIME + dt.timedelta(seconds=seconds)
    response = client.get(click_url(services, "anna", 1, SEND), headers=BROWSER)
    assert response.status_code == 302
    assert landing(response).startswith("https://shop.example/items/")
    assert click_kinds(redis_client) == [kind]
    ranking_stored = redis_client.hexists(keys.rankings("anna"), f"daily/{SEND}")
    assert ranking_stored == (kind == "human")


@pytest.mark.usefixtures("sent")
def test_every_link_clicked_at_once_is_a_scanner(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    clock.now = SEND_TIME + dt.timedelta(hours=2)
    for slot in (1, 2, 3):
        client.get(click_url(services, "anna", slot, SEND), headers=BROWSER)
        clock.advance(seconds=0.3)
    assert click_kinds(redis_client) == ["human", "human", "bot"]


@pytest.mark.usefixtures("sent")
def test_a_person_clicking_links_one_by_one_stays_a_person(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    clock.now = SEND_TIME + dt.timedelta(hours=2)
    for slot in (1, 2, 3, 1):
        client.get(click_url(services, "anna", slot, SEND), headers=BROWSER)
        clock.advance(seconds=4)
    assert click_kinds(redis_client) == ["human"] * 4


@pytest.mark.usefixtures("sent")
def test_clicks_of_another_send_do_not_add_up(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    clock.now = SEND_TIME + dt.timedelta(hours=2)
    client.get(click_url(services, "anna", 1, SEND), headers=BROWSER)
    client.get(click_url(services, "anna", 2, "2026-11-22"), headers=BROWSER)
    client.get(click_url(services, "anna", 3, SEND), headers=BROWSER)
    assert click_kinds(redis_client) == ["human", "human", "human"]
    assert redis_client.ttl(keys.recent_clicks("anna")) > 0


@pytest.mark.usefixtures("sent")
def test_a_block_click_right_after_the_send_is_a_scanners_too(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    from tests.factories import store_block, variant

    store_block(services, [variant("v")])
    clock.now = SEND_TIME + dt.timedelta(seconds=2)
    token = services.signer.sign("anna")
    response = client.get(f"/c/daily/hero?r={token}&s={SEND}", headers=BROWSER)
    assert response.status_code == 302
    assert landing(response) == "https://shop.example/v"
    events = [f for _, f in campaign_event_entries(redis_client, "daily")]
    assert [(e["block"], e["kind"], e["send"]) for e in events] == [("hero", "bot", SEND)]
    assert not redis_client.hexists(keys.decisions("anna"), "daily/hero")
