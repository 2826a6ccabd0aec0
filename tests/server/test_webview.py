"""The web view: the whole newsletter for one recipient, with the same decisions, rankings and
clicks as the email's images; noindex and never stored."""

from __future__ import annotations

import html
import re

import redis
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.storage import keys
from server.services import Services
from tests.factories import FALLBACK_URL, landing, store_block, store_recipient, variant
from tests.newsletter_fixtures import click_url, item, slot_url, store_newsletter

SEND = "2026-11-23"
ITEMS = [
    item("lisbon", "city_trip", text="Old town hotel", price=289, old_price=349, badge="-17%"),
    item("crete", "beach", price=649),
    item("alps", "ski"),
]
GREETING = {
    "source": '<h1 class="hi">Hello {{ first_name }}</h1><a href="{{ click_url }}">go</a>',
    "defaults": {"first_name": "traveller"},
}


def web_view(client: FlaskClient, services: Services, recipient_id: str | None) -> str:
    token = services.signer.sign(recipient_id) if recipient_id else "forged.token"
    response = client.get(f"/v/daily?r={token}&s={SEND}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache, no-store, max-age=0, private"
    assert "noindex" in response.headers["X-Robots-Tag"]
    page = response.get_data(as_text=True)
    assert '<meta name="robots" content="noindex, nofollow">' in page
    return page


def setup(services: Services) -> None:
    hero = variant("hello", {"attr": "first_name", "exists": True}, background="#00AA00")
    store_block(services, [{**hero, "html": GREETING}])
    store_newsletter(services, ITEMS, slots=3, blocks=["hero"])
    store_recipient(
        services,
        "anna",
        {"first_name": "Anna <b>", "consent_email": True},
        {"affinity:beach": 0.9, "affinity:city_trip": 0.5, "affinity:ski": 0.1},
    )


def test_the_slots_show_the_same_items_and_clicks_as_the_images(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    setup(services)
    client.get(slot_url(services, "anna", 2, SEND))  # the email was opened first
    page = web_view(client, services, "anna")

    titles = [
        (html.unescape(href), title)
        for href, title in re.findall(r"<h2><a href=\"([^\"]+)\">([^<]+)</a></h2>", page)
    ]
    assert [title for _, title in titles] == ["Trip crete", "Trip lisbon", "Trip alps"]
    for number, (href, _) in enumerate(titles, start=1):
        assert href.endswith(f"/s/daily/{number}?r={services.signer.sign('anna')}&s={SEND}")
        link = href.removeprefix("http://blanco.test")
        assert link == click_url(services, "anna", number, SEND)
    assert landing(client.get(titles[0][0])) == "https://shop.example/items/crete"
    assert "€\xa0289,00" in page
    assert "<s>€\xa0349,00</s>" in page
    assert '<span class="badge">-17%</span>' in page
    assert len(redis_client.hgetall(keys.rankings("anna"))) == 1  # the email's own ranking


def test_live_html_blocks_are_decided_like_an_open_and_escape_profile_values(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    setup(services)
    page = web_view(client, services, "anna")
    assert '<h1 class="hi">Hello Anna &lt;b&gt;</h1>' in page
    stored = redis_client.hget(keys.decisions("anna"), "daily/hero")
    assert stored is not None
    assert '"v": "hello"' in stored
    # the click of the live block follows the decision the web view stored
    response = client.get(f"/c/daily/hero?r={services.signer.sign('anna')}")
    assert landing(response) == "https://shop.example/hello"


def test_blocks_without_live_html_are_their_image(client: FlaskClient, services: Services) -> None:
    store_block(services, [variant("plain")])
    store_newsletter(services, ITEMS, slots=1, blocks=["hero"])
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
    page = web_view(client, services, "anna")
    token = services.signer.sign("anna")
    assert (
        f'<img src="http://blanco.test/i/daily/hero.png?r={token}&amp;s={SEND}&amp;dpr=2"' in page
    )
    assert f'<a href="http://blanco.test/c/daily/hero?r={token}&amp;s={SEND}">' in page


def test_a_bad_token_gets_the_generic_page(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    setup(services)
    page = web_view(client, services, None)
    assert "Anna" not in page
    assert "Hello" not in page  # the hero's fallback (an image), not the personal greeting
    assert "forged" not in page  # a bad token is not passed on in links
    assert re.findall(r"<h2><a href=\"([^\"]+)\"", page)[0] == (
        f"http://blanco.test/s/daily/1?s={SEND}"
    )
    assert not redis_client.keys(keys.rankings("*"))


def test_a_slot_without_item_shows_its_fallback_image(
    client: FlaskClient, services: Services
) -> None:
    store_newsletter(services, ITEMS[:1], slots=2)
    store_recipient(services, "anna", {"consent_email": True})
    page = web_view(client, services, "anna")
    assert f"/s/daily/2.png?r={services.signer.sign('anna')}&amp;s={SEND}&amp;dpr=2" in page
    assert landing(client.get(click_url(services, "anna", 2, SEND))) == FALLBACK_URL


def test_an_unknown_newsletter_is_a_plain_404_page(client: FlaskClient) -> None:
    response = client.get("/v/nope?r=x")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-cache, no-store, max-age=0, private"


def test_the_page_survives_a_broken_stored_ranking_and_a_bad_send(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    setup(services)
    redis_client.hset(keys.rankings("anna"), f"daily/{SEND}", "{bad json")
    page = web_view(client, services, "anna")
    assert "/s/daily/1.png?" in page  # the slot images instead of the items' live HTML
    response = client.get("/v/daily?s=a%20b&c")
    assert response.status_code == 200
    assert "a b" not in response.get_data(as_text=True)
    assert '/i/daily/hero.png?dpr=2"' in response.get_data(as_text=True)


def test_the_page_records_an_open_of_its_live_block_and_of_each_slot(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    setup(services)
    web_view(client, services, "anna")
    opens = {
        fields["block"]: fields["variant"]
        for _, fields in campaign_event_entries(redis_client, "daily")
        if fields["type"] == "open"
    }
    assert opens == {
        "hero": "hello",
        "slot-1": "crete",
        "slot-2": "lisbon",
        "slot-3": "alps",
    }
