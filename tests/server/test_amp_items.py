"""The AMP items JSON: what the slot images show, behind AMP for Email's CORS, never a 5xx."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from models.campaigns.specs import CampaignSpec
from models.measurement.event_stream import campaign_event_entries
from models.newsletter.newsletters import NewsletterSpec
from models.newsletter.sends import plan_send
from models.recipients.upserts import ProfileUpsert
from models.storage import keys
from server.config import ConfigError, load_settings
from server.services import Services
from tests.factories import FALLBACK_URL, decode_image, landing, store_recipient
from tests.newsletter_fixtures import item, slot_url, store_newsletter
from tests.redis_servers import RedisProcess

SEND = "2026-11-23"
PUBLIC = "https://blanco.test"
SENDERS = "news@shop.example, @brand.example"
V2 = {"AMP-Email-Sender": "news@shop.example"}
ALLOWED_SOURCE = "&__amp_source_origin=news%40shop.example"
ITEMS = [
    item("amsterdam", "city_trip", priority=1.0, price=289, old_price=349, badge="-17%"),
    item("paris", "city_trip", priority=0.9),
    item("crete", "beach", priority=1.0, text="Sun and sea", cta="Book Crete"),
    item("algarve", "beach", priority=0.8),
    item("zermatt", "ski"),
    item("rome", "culture"),
]
ALLOW_HEADERS = (
    "AMP-Email-Allow-Sender",
    "Access-Control-Allow-Origin",
    "AMP-Access-Control-Allow-Source-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Credentials",
)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with an https public URL and two allowed AMP senders."""
    return make_app(public_url=PUBLIC, amp_allowed_senders=SENDERS)


@pytest.fixture
def anna(services: Services) -> str:
    store_recipient(
        services,
        "anna",
        {"first_name": "Anna", "consent_email": True},
        {"affinity:beach": 0.9, "affinity:city_trip": 0.6, "affinity:culture": 0.5},
    )
    return "anna"


def items_url(services: Services, recipient_id: str | None, send: str | None = SEND) -> str:
    """The items URL as the AMP email would fetch it (a tampered token when no recipient)."""
    token = services.signer.sign(recipient_id) if recipient_id else "anna.tampered"
    return f"/amp/daily/items.json?r={token}" + (f"&s={send}" if send else "")


def fetch(
    client: FlaskClient, url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[TestResponse, list[dict[str, Any]]]:
    """The response and its items (checking it is the JSON amp-list reads)."""
    response = client.open(url, method=method, headers=V2 if headers is None else headers)
    assert response.status_code in (200, 403), response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-cache, no-store, max-age=0, private"
    if method == "HEAD":
        return response, []
    body = json.loads(response.get_data(as_text=True))
    assert set(body) == {"items"}
    found: list[dict[str, Any]] = body["items"]
    return response, found


def path_of(url: str) -> str:
    """The path and query of an absolute Blanco URL."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def events(redis_client: redis.Redis) -> list[dict[str, str]]:
    """The campaign's events, oldest first."""
    return [fields for _, fields in campaign_event_entries(redis_client, "daily")]


def png(width: int = 40, height: int = 30) -> bytes:
    """A small PNG."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), "#0B7A75").save(out, "PNG")
    return out.getvalue()


# what the items are


def test_items_are_what_the_slot_images_show_and_their_clicks_pair(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    newsletter = store_newsletter(services, ITEMS, slots=3)
    services.sends.start(plan_send(newsletter, None, services.clock()))
    response, found = fetch(client, items_url(services, anna))
    assert response.status_code == 200
    # beach 0.9 > city 0.6 > culture 0.5, one item per category
    assert [i["title"] for i in found] == ["Trip crete", "Trip amsterdam", "Trip rome"]
    assert [i["slot"] for i in found] == [1, 2, 3]
    stored = json.loads(redis_client.hget(keys.rankings(anna), f"daily/{SEND}") or "{}")
    assert [entry[0] for entry in stored["items"]] == ["crete", "amsterdam", "rome"]
    token = services.signer.sign(anna)
    for number, shown in enumerate(found, start=1):
        assert path_of(shown["url"]) == f"/s/daily/{number}?r={token}&s={SEND}"
        assert shown["fallback"] is False

    amp_opens = [e for e in events(redis_client) if e["type"] == "open"]
    assert [(e["block"], e["variant"]) for e in amp_opens] == [
        ("slot-1", "crete"),
        ("slot-2", "amsterdam"),
        ("slot-3", "rome"),
    ]
    assert {(e["client"], e["kind"], e["send"]) for e in amp_opens} == {
        ("amp", "proxied_human", SEND)
    }

    # the image slots show the same items, and every click goes where the AMP item says
    for number in (1, 2, 3):
        image = client.get(slot_url(services, anna, number, SEND))
        assert "X-Blanco-Fallback" not in image.headers
        decode_image(image.data)
    image_opens = [e for e in events(redis_client) if e["type"] == "open"][3:]
    assert [e["variant"] for e in image_opens] == ["crete", "amsterdam", "rome"]
    for shown, expected in zip(found, ("crete", "amsterdam", "rome"), strict=True):
        click = client.get(path_of(shown["url"]))
        assert click.status_code == 302
        assert landing(click) == f"https://shop.example/items/{expected}"
    assert len(redis_client.hgetall(keys.rankings(anna))) == 1


def test_item_fields_prices_and_call_to_action(
    client: FlaskClient, services: Services, anna: str
) -> None:
    card = {
        "type": "card",
        "title": {"text": "{{ item_title }}"},
        "price": "{{ item_price }}",
        "currency": "USD",
        "locale": "en_US",
        "cta": {"text": "Go, {{ first_name }}"},
        "defaults": {"first_name": "traveller"},
    }
    store_newsletter(services, ITEMS, slots=2)
    _, banner_items = fetch(client, items_url(services, anna))
    assert banner_items[0]["text"] == "Sun and sea"
    assert banner_items[0]["cta"] == "Book Crete"
    assert banner_items[1]["price"] == "€\xa0289,00"  # banner layout: the card's defaults
    assert banner_items[1]["old_price"] == "€\xa0349,00"
    assert banner_items[1]["badge"] == "-17%"
    assert banner_items[1]["cta"] == ""

    newsletter = services.newsletters.require("daily")
    slots = [s.model_dump(mode="json") for s in newsletter.slots]
    for slot in slots:
        slot["layout"] = card
    spec = newsletter.model_dump(mode="json", exclude={"campaign_id", "version", "updated_at"})
    services.newsletters.put("daily", NewsletterSpec.model_validate({**spec, "slots": slots}))
    _, card_items = fetch(client, items_url(services, anna))  # the same send: the same items
    assert card_items[0]["cta"] == "Book Crete"  # the item's own call to action first
    assert card_items[1]["price"] == "$289.00"
    assert card_items[1]["old_price"] == "$349.00"
    assert card_items[1]["cta"] == "Go, Anna"
    _, generic = fetch(client, items_url(services, None, "2026-11-24"))
    assert {i["cta"] for i in generic} >= {"Go, traveller"}


def test_an_item_picture_is_a_public_https_url_with_its_size(
    client: FlaskClient, services: Services, anna: str
) -> None:
    asset, _ = services.assets.put(png(40, 30), "crete.png", now=services.clock())
    pictured = [item("crete", "beach", image_asset=asset.id), item("rome", "culture")]
    store_newsletter(services, pictured, slots=2)
    _, found = fetch(client, items_url(services, anna))
    hex_id = asset.id.removeprefix("sha256:")
    assert found[0]["image"] == f"{PUBLIC}/a/{hex_id}.png"
    assert (found[0]["width"], found[0]["height"]) == (40, 30)
    assert found[1]["image"] == ""
    served = client.get(path_of(found[0]["image"]))
    assert served.status_code == 200
    assert served.data == png(40, 30)


def test_a_slot_without_an_item_gives_its_fallback(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, [item("only", "beach")], slots=2)
    _, found = fetch(client, items_url(services, anna))
    assert found[0]["fallback"] is False
    fallback = found[1]
    assert fallback["fallback"] is True
    assert fallback["title"] == "Your trip"  # the slot's alt (the fallback has none)
    assert (fallback["image"], fallback["price"], fallback["text"]) == ("", "", "")
    assert landing(client.get(path_of(fallback["url"]))) == FALLBACK_URL


def test_a_paused_campaign_gives_every_slot_fallback(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    services.campaigns.update_campaign(CampaignSpec(id="daily", status="paused"))
    _, found = fetch(client, items_url(services, anna))
    assert [i["fallback"] for i in found] == [True, True]


# bad tokens, unknown campaigns, failures


def test_a_bad_token_gets_generic_items_and_nothing_personal(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    response, found = fetch(client, items_url(services, None))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert len(found) == 3
    assert "Anna" not in text
    assert "anna" not in text
    for number, shown in enumerate(found, start=1):
        query = parse_qs(urlsplit(shown["url"]).query)
        assert query == {"s": [SEND]}, "no token in a generic item's click URL"
        assert urlsplit(shown["url"]).path == f"/s/daily/{number}"
    assert not redis_client.exists(keys.rankings(anna))
    assert events(redis_client) == []


def test_unknown_campaign_answers_an_empty_list(client: FlaskClient, services: Services) -> None:
    store_newsletter(services, ITEMS, slots=1)
    token = services.signer.sign("anna")
    response, found = fetch(client, f"/amp/nope/items.json?r={token}&s={SEND}")
    assert (response.status_code, found) == (200, [])
    assert response.headers["AMP-Email-Allow-Sender"] == "news@shop.example"


@pytest.mark.own_redis
def test_redis_trouble_answers_an_empty_list_not_an_error(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with RedisProcess(tmp_path / "redis") as own:
        app = make_app(
            public_url=PUBLIC,
            amp_allowed_senders=SENDERS,
            redis_url=own.url,
            redis_timeout_seconds=0.2,
        )
        services: Services = app.extensions["blanco"]
        store_newsletter(services, ITEMS, slots=2)
        store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
        client = app.test_client()
        assert len(fetch(client, items_url(services, "anna"))[1]) == 2

        own.stop()
        response, found = fetch(client, items_url(services, "anna"))

        assert (response.status_code, found) == (200, [])
        assert response.headers["AMP-Email-Allow-Sender"] == "news@shop.example"
        assert not app.extensions["blanco.open"].breakers.all_closed


def test_an_unexpected_error_answers_an_empty_list(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    # the campaign's document is no longer a campaign: reading it fails, not Redis
    redis_client.set(keys.campaign("daily"), '{"id": "daily", "status": "boom')

    response, found = fetch(client, items_url(services, anna))

    assert (response.status_code, found) == (200, [])
    assert "boom" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/amp/daily/items.json",
        "/amp/daily/items.json?r=x&s=not-a-date",
        "/amp/daily/items.json?s=2026-11-23",
        "/amp/nope/items.json?r=anna.x",
        "/amp/daily/items.json/",
    ],
)
def test_never_a_redirect_or_a_server_error(
    client: FlaskClient, services: Services, path: str
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    for headers in (V2, {}):
        response = client.get(path, headers=headers)
        assert not 300 <= response.status_code < 400, (path, response.status_code)
        assert response.status_code < 500, (path, response.status_code)


def test_head_records_nothing(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    response, _ = fetch(client, items_url(services, anna), method="HEAD")
    assert response.status_code == 200
    assert events(redis_client) == []


# CORS


def test_version_2_allowed_sender(client: FlaskClient, services: Services, anna: str) -> None:
    store_newsletter(services, ITEMS, slots=1)
    response, found = fetch(client, items_url(services, anna))
    assert response.status_code == 200
    assert found
    assert response.headers["AMP-Email-Allow-Sender"] == "news@shop.example"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_version_1_allowed_source_origin(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=1)
    url = items_url(services, anna) + "&__amp_source_origin=deals%40brand.example"
    response, found = fetch(client, url, {"Origin": "https://mail.google.com"})
    assert response.status_code == 200
    assert found
    assert response.headers["Access-Control-Allow-Origin"] == "https://mail.google.com"
    assert response.headers["AMP-Access-Control-Allow-Source-Origin"] == "deals@brand.example"
    assert response.headers["Access-Control-Expose-Headers"] == (
        "AMP-Access-Control-Allow-Source-Origin"
    )
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "AMP-Email-Allow-Sender" not in response.headers


def test_version_2_takes_precedence(client: FlaskClient, services: Services, anna: str) -> None:
    store_newsletter(services, ITEMS, slots=1)
    url = items_url(services, anna) + "&__amp_source_origin=news%40shop.example"
    headers = {**V2, "Origin": "https://mail.example.net"}
    response, _ = fetch(client, url, headers)
    assert response.headers["AMP-Email-Allow-Sender"] == "news@shop.example"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("headers", "extra_query"),
    [
        ({"AMP-Email-Sender": "spam@elsewhere.example"}, ""),
        ({"AMP-Email-Sender": "x@sub.brand.example"}, ""),
        ({"AMP-Email-Sender": "x@brand.example.evil"}, ""),
        ({"AMP-Email-Sender": "not an address"}, ""),
        (
            {"AMP-Email-Sender": "spam@elsewhere.example"},
            "&__amp_source_origin=news%40shop.example",
        ),
        ({"Origin": "https://mail.example.net"}, "&__amp_source_origin=spam%40elsewhere.example"),
        ({"Origin": "https://mail.example.net"}, ""),
        ({"Origin": "javascript:alert(1)"}, ALLOWED_SOURCE),
        ({}, ALLOWED_SOURCE),
        ({}, ""),
    ],
)
def test_a_refused_request_gets_no_allow_header_and_no_data(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    anna: str,
    headers: dict[str, str],
    extra_query: str,
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    response, found = fetch(client, items_url(services, anna) + extra_query, headers)
    assert response.status_code == 403
    assert found == []
    for name in ALLOW_HEADERS:
        assert name not in response.headers, name
    assert not redis_client.exists(keys.rankings(anna)), "nothing ranked for a refused request"
    assert events(redis_client) == []


def test_senders_match_without_case_and_by_domain(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=1)
    for sender in ("NEWS@Shop.Example", "deals@BRAND.example", "anyone@brand.example"):
        response, found = fetch(client, items_url(services, anna), {"AMP-Email-Sender": sender})
        assert response.status_code == 200, sender
        assert response.headers["AMP-Email-Allow-Sender"] == sender
        assert found


def test_no_allowed_senders_refuses_every_amp_request(
    make_app: Callable[..., Flask], services: Services
) -> None:
    closed = make_app(public_url=PUBLIC).test_client()
    store_newsletter(services, ITEMS, slots=1)
    response, found = fetch(closed, items_url(services, "anna"))
    assert (response.status_code, found) == (403, [])


@pytest.mark.parametrize("value", ["news", "news@", "a@b@c", "@", "news@shop example"])
def test_a_bad_allowed_senders_setting_stops_start_up(value: str) -> None:
    environ = {"BLANCO_SIGNING_KEYS": "k" * 40, "BLANCO_AMP_ALLOWED_SENDERS": value}
    with pytest.raises(ConfigError, match="BLANCO_AMP_ALLOWED_SENDERS"):
        load_settings(environ=environ)


def test_the_allowed_senders_setting_is_parsed() -> None:
    settings = load_settings(
        environ={
            "BLANCO_SIGNING_KEYS": "k" * 40,
            "BLANCO_AMP_ALLOWED_SENDERS": " News@Shop.example ,, @Brand.example ",
        }
    )
    assert settings.amp_senders == ("news@shop.example", "@brand.example")


def test_without_consent_the_items_are_generic_and_nothing_personal(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    _, personal = fetch(client, items_url(services, anna, "2026-11-22"))
    _, generic = fetch(client, items_url(services, None))
    services.recipients.upsert_profiles(
        [ProfileUpsert(recipient_id=anna, attributes={"consent_personalisation": False})]
    )
    response, found = fetch(client, items_url(services, anna))
    assert response.status_code == 200
    assert "Anna" not in response.get_data(as_text=True)
    titles = [shown["title"] for shown in found]
    assert sorted(titles) == sorted(shown["title"] for shown in generic)
    assert titles != [shown["title"] for shown in personal]
