"""AMP for Email CORS version 1: only email clients', AMP caches' and the senders' own origins
get a grant, and never with credentials."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.storage import keys
from server.services import Services
from tests.factories import store_recipient
from tests.newsletter_fixtures import item, store_newsletter

SENDERS = "news@shop.example, @brand.example"
GRANT_HEADERS = (
    "Access-Control-Allow-Origin",
    "AMP-Access-Control-Allow-Source-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Credentials",
    "AMP-Email-Allow-Sender",
)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with two allowed AMP senders: an address and a whole domain."""
    return make_app(public_url="https://blanco.test", amp_allowed_senders=SENDERS)


@pytest.fixture
def url(services: Services) -> str:
    """Anna's items URL with an allowed sender in ``__amp_source_origin``."""
    store_recipient(services, "anna", {"consent_email": True}, {"affinity:beach": 0.9})
    store_newsletter(services, [item("crete", "beach")], slots=1)
    token = services.signer.sign("anna")
    return f"/amp/daily/items.json?r={token}&s=2026-11-23&__amp_source_origin=news%40shop.example"


@pytest.mark.parametrize(
    "origin",
    [
        "https://mail.google.com",
        "https://amp.gmail.dev",
        "https://playground.amp.dev",
        "https://news-shop-example.cdn.ampproject.org",
        "https://shop.example",
        "https://www.shop.example",
        "https://brand.example",
    ],
)
def test_an_allowed_origin_is_echoed_without_credentials(
    client: FlaskClient, url: str, origin: str
) -> None:
    response = client.get(url, headers={"Origin": origin})

    assert response.status_code == 200
    assert response.get_json()["items"]
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["AMP-Access-Control-Allow-Source-Origin"] == "news@shop.example"
    assert response.headers["Access-Control-Expose-Headers"] == (
        "AMP-Access-Control-Allow-Source-Origin"
    )
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://mail.example.net",
        "https://mail.google.com.evil.example",
        "https://evilshop.example",
        "https://shop.example.evil",
        "https://ampproject.org.evil.example",
        "http://mail.google.com",
        "http://shop.example",
        "https://mail.google.com:8443",
        "https://shop.example/path",
        "https://SHOP.example",
        "null",
        "",
    ],
)
def test_any_other_origin_gets_no_grant_and_nothing_is_read(
    client: FlaskClient, redis_client: redis.Redis, url: str, origin: str
) -> None:
    response = client.get(url, headers={"Origin": origin})

    assert response.status_code == 403
    assert response.get_json() == {"items": []}
    for name in GRANT_HEADERS:
        assert name not in response.headers, name
    assert not redis_client.exists(keys.rankings("anna")), "nothing ranked for a refused request"


def test_the_senders_origin_needs_the_sender_to_be_allowed_too(
    client: FlaskClient, url: str
) -> None:
    spoofed = url.replace("news%40shop.example", "spam%40elsewhere.example")

    response = client.get(spoofed, headers={"Origin": "https://shop.example"})

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
