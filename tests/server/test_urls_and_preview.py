"""Admin API v1: a recipient's signed URLs, the preview image and the decision explanation."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from server.services import Services
from server.tokens import TokenSigner
from server.urls import with_param
from tests.conftest import SIGNING_KEY
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    corner_color,
    decode_image,
    error_pointers,
    hex_rgb,
    landing,
    problem,
    store_block,
    store_recipient,
    variant,
)

HERO = "/campaigns/daily/blocks/hero"
SATURDAY = "2026-11-28T10:00:00+00:00"  # the clock says Monday 2026-11-23 09:30 UTC
WEEKEND = variant(
    "weekend", {"time": {"weekdays": ["sat", "sun"]}}, priority=10, background="#AA0000"
)
HOT = variant("hot", {"score": "travel", "gte": 0.7}, priority=5, background="#00AA00")
GMAIL_UA = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def stored(services: Services) -> Services:
    """Block ``daily/hero`` (weekend and hot variants), Anna (hot) and Eva (not hot)."""
    store_block(services, [WEEKEND, HOT])
    store_recipient(services, "anna", {"first_name": "Anna"}, {"travel": 0.9})
    store_recipient(services, "eva", {"first_name": "Eva"}, {"travel": 0.1})
    return services


def nothing_recorded(redis_client: redis.Redis, *recipient_ids: str) -> bool:
    """Whether no decision and no event was stored."""
    decisions = [keys.decisions(r) for r in recipient_ids]
    return not redis_client.exists(*decisions) and not list(
        redis_client.scan_iter(match="blanco:ev:*")
    )


def explain(api: AdminApi, recipient_id: str, **query: str) -> dict[str, Any]:
    """The decision explanation for ``recipient_id``."""
    response = api.get(f"{HERO}/decision", query_string={"recipient_id": recipient_id, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    document: dict[str, Any] = response.get_json()
    return document


def preview(api: AdminApi, recipient_id: str, **query: str) -> bytes:
    """The preview PNG for ``recipient_id``."""
    response = api.get(f"{HERO}/preview", query_string={"recipient_id": recipient_id, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    body: bytes = response.data
    return body


# URLs


def test_urls_carry_a_signed_token(api: AdminApi, stored: Services) -> None:
    response = api.get(f"{HERO}/urls", query_string={"recipient_id": "anna"})
    assert response.status_code == 200
    urls = response.get_json()
    assert urls["recipient_id"] == "anna"
    signer = TokenSigner([SIGNING_KEY])
    assert signer.verify(urls["token"]) == "anna"
    image, click = urlsplit(urls["image_url"]), urlsplit(urls["click_url"])
    assert (image.scheme, image.netloc, image.path) == ("http", "blanco.test", "/i/daily/hero.png")
    assert (click.scheme, click.netloc, click.path) == ("http", "blanco.test", "/c/daily/hero")
    assert parse_qs(image.query) == {"r": [urls["token"]]}
    assert parse_qs(click.query) == {"r": [urls["token"]]}


def test_urls_work_on_the_open_time_routes(
    api: AdminApi, client: FlaskClient, stored: Services
) -> None:
    urls = api.get(f"{HERO}/urls", query_string={"recipient_id": "anna"}).get_json()
    image, click = urlsplit(urls["image_url"]), urlsplit(urls["click_url"])
    opened = client.get(f"{image.path}?{image.query}")
    assert opened.status_code == 200
    assert corner_color(opened.data) == hex_rgb("#00AA00")
    clicked = client.get(f"{click.path}?{click.query}")
    assert clicked.status_code == 302
    assert landing(clicked) == HOT["target_url"]


def test_urls_escape_the_token(api: AdminApi, stored: Services) -> None:
    response = api.get(f"{HERO}/urls", query_string={"recipient_id": "anna.b@example.com"})
    query = urlsplit(response.get_json()["image_url"]).query
    assert query.startswith("r=anna.b%40example.com.")
    assert TokenSigner([SIGNING_KEY]).verify(parse_qs(query)["r"][0]) == "anna.b@example.com"


@pytest.mark.parametrize("query", [{}, {"recipient_id": ""}, {"recipient_id": "a b"}])
def test_urls_need_a_valid_recipient(
    api: AdminApi, stored: Services, query: dict[str, str]
) -> None:
    response = api.get(f"{HERO}/urls", query_string=query)
    assert error_pointers(response) == [("/recipient_id", "recipient_id")]


@pytest.mark.parametrize("what", ["urls", "preview", "decision"])
@pytest.mark.parametrize(
    "block_path", ["/campaigns/daily/blocks/nope", "/campaigns/nope/blocks/hero"]
)
def test_unknown_block_is_not_found(
    api: AdminApi, stored: Services, redis_client: redis.Redis, what: str, block_path: str
) -> None:
    problem(api.get(f"{block_path}/{what}", query_string={"recipient_id": "anna"}), 404)
    assert nothing_recorded(redis_client, "anna")


# preview


def test_preview_shows_the_recipients_image_at_the_moment(
    api: AdminApi, stored: Services, redis_client: redis.Redis
) -> None:
    monday = preview(api, "anna")
    assert decode_image(monday).size == (300, 100)
    assert corner_color(monday) == hex_rgb("#00AA00")
    saturday = preview(api, "anna", at=SATURDAY)
    assert decode_image(saturday).size == (300, 100)
    assert corner_color(saturday) == hex_rgb("#AA0000")
    assert corner_color(preview(api, "eva")) == hex_rgb(FALLBACK_BACKGROUND)
    assert corner_color(preview(api, "eva", at=SATURDAY)) == hex_rgb("#AA0000")
    assert corner_color(preview(api, "ghost")) == hex_rgb(FALLBACK_BACKGROUND)
    assert nothing_recorded(redis_client, "anna", "eva", "ghost")


def test_preview_is_what_the_open_shows(
    api: AdminApi, client: FlaskClient, stored: Services
) -> None:
    token = stored.signer.sign("anna")
    opened = client.get("/i/daily/hero.png", query_string={"r": token})
    assert opened.status_code == 200
    assert decode_image(preview(api, "anna")).tobytes() == decode_image(opened.data).tobytes()


def test_preview_does_not_lock_a_first_open(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
) -> None:
    store_block(services, [WEEKEND, HOT], lock_on_first_open=True)
    store_recipient(services, "anna", {"first_name": "Anna"}, {"travel": 0.9})
    assert corner_color(preview(api, "anna", at=SATURDAY)) == hex_rgb("#AA0000")
    assert nothing_recorded(redis_client, "anna")
    opened = client.get("/i/daily/hero.png", query_string={"r": services.signer.sign("anna")})
    assert corner_color(opened.data) == hex_rgb("#00AA00")
    assert redis_client.exists(keys.decisions("anna"))


def test_preview_follows_the_user_agent(
    api: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    gmail = variant("gmail", {"client": ["gmail_proxy"]}, priority=50, background="#0000AA")
    store_block(services, [gmail, HOT])
    store_recipient(services, "anna", {"first_name": "Anna"}, {"travel": 0.9})
    assert corner_color(preview(api, "anna", user_agent=GMAIL_UA)) == hex_rgb("#0000AA")
    assert corner_color(preview(api, "anna")) == hex_rgb("#00AA00")
    assert nothing_recorded(redis_client, "anna")


def test_preview_renders_personal_fields(api: AdminApi, stored: Services) -> None:
    store_recipient(stored, "bram", {"first_name": "Bram"}, {"travel": 0.9})
    anna, bram = preview(api, "anna"), preview(api, "bram")
    assert corner_color(anna) == corner_color(bram) == hex_rgb("#00AA00")
    assert decode_image(anna).tobytes() != decode_image(bram).tobytes()


# decision


def test_decision_explains_the_variant(
    api: AdminApi, stored: Services, redis_client: redis.Redis
) -> None:
    explained = explain(api, "anna")
    assert explained == {
        "campaign_id": "daily",
        "block_id": "hero",
        "recipient_id": "anna",
        "at": "2026-11-23T09:30:00Z",
        "version": 1,
        "variant_id": "hot",
        "reason": "matched",
        "target_url": HOT["target_url"],
    }
    saturday = explain(api, "anna", at=SATURDAY)
    assert saturday["variant_id"] == "weekend"
    assert saturday["target_url"] == WEEKEND["target_url"]
    assert dt.datetime.fromisoformat(saturday["at"]) == dt.datetime.fromisoformat(SATURDAY)
    assert nothing_recorded(redis_client, "anna")


def test_decision_explains_the_fallback(api: AdminApi, stored: Services) -> None:
    explained = explain(api, "eva")
    assert explained["variant_id"] is None
    assert explained["reason"] == "no variant matched"
    assert explained["target_url"] == FALLBACK_URL
    assert explain(api, "ghost")["reason"] == "unknown recipient"
    assert explain(api, "ghost")["variant_id"] is None


def test_decision_in_a_paused_campaign(api: AdminApi, stored: Services) -> None:
    assert api.put("/campaigns/daily", json={"status": "paused"}).status_code == 200
    explained = explain(api, "anna")
    assert (explained["variant_id"], explained["reason"]) == (None, "campaign paused")
    assert explained["target_url"] == FALLBACK_URL


def test_decision_explains_a_split(api: AdminApi, services: Services) -> None:
    store_block(services, [variant("left"), variant("right")])
    for n in range(12):
        store_recipient(services, f"r{n}")
    chosen = {explain(api, f"r{n}")["variant_id"] for n in range(12)}
    assert chosen == {"left", "right"}
    assert explain(api, "r0")["reason"] == "split among 2"
    assert explain(api, "r0") == explain(api, "r0")


def test_decision_follows_the_user_agent_and_the_version(api: AdminApi, services: Services) -> None:
    gmail = variant("gmail", {"client": ["gmail_proxy"]}, priority=50)
    store_block(services, [HOT])
    store_block(services, [gmail, HOT])
    store_recipient(services, "anna", {"first_name": "Anna"}, {"travel": 0.9})
    explained = explain(api, "anna", user_agent=GMAIL_UA)
    assert (explained["variant_id"], explained["version"]) == ("gmail", 2)
    assert explain(api, "anna", user_agent="Thunderbird/115.0")["variant_id"] == "hot"


@pytest.mark.parametrize("what", ["decision", "preview"])
@pytest.mark.parametrize(
    ("at", "detail"),
    [
        ("next tuesday", "ISO 8601"),
        ("2026-13-01T10:00:00Z", "ISO 8601"),
        ("2026-11-28T10:00:00", "time zone"),
        ("2026-11-28", "time zone"),
    ],
)
def test_bad_at_points_at_at(
    api: AdminApi, stored: Services, redis_client: redis.Redis, what: str, at: str, detail: str
) -> None:
    response = api.get(f"{HERO}/{what}", query_string={"recipient_id": "anna", "at": at})
    body = problem(response, 422)
    assert detail in body["detail"]
    assert [(e["pointer"], e["field"]) for e in body["errors"]] == [("/at", "at")]
    assert nothing_recorded(redis_client, "anna")


@pytest.mark.parametrize("what", ["decision", "preview"])
def test_preview_and_decision_need_a_valid_recipient(
    api: AdminApi, stored: Services, what: str
) -> None:
    assert error_pointers(api.get(f"{HERO}/{what}")) == [("/recipient_id", "recipient_id")]
    response = api.get(f"{HERO}/{what}", query_string={"recipient_id": "x" * 129})
    assert error_pointers(response) == [("/recipient_id", "recipient_id")]


def test_urls_come_with_embed_html_carrying_explicit_sizes(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [])
    response = client.get(
        "/api/v1/campaigns/daily/blocks/hero/urls",
        query_string={"recipient_id": "anna"},
        headers=admin_headers,
    )
    body = response.get_json()
    assert (body["width"], body["height"]) == (300, 100)
    assert body["retina_image_url"].endswith("&dpr=2")
    html = body["html"]
    assert 'width="300"' in html
    assert 'height="100"' in html
    assert "alt=" in html
    assert body["click_url"].replace("&", "&amp;") in html
    retina = client.get(body["retina_image_url"].removeprefix("http://blanco.test"))
    assert decode_image(retina.data).size == (600, 200)


@pytest.mark.parametrize(
    ("landing_url", "expected"),
    [
        ("https://shop.example/cold", "https://shop.example/cold?bl_click=T"),
        ("https://shop.example/cold?flag", "https://shop.example/cold?flag&bl_click=T"),
        (
            "https://shop.example/p?q=caf%C3%A9+cr%E8me&a=1;b=2#top",
            "https://shop.example/p?q=caf%C3%A9+cr%E8me&a=1;b=2&bl_click=T#top",
        ),
        (
            "https://shop.example/p?bl_click=old&x=&bl%5Fclick=2",
            "https://shop.example/p?x=&bl_click=T",
        ),
        ("mailto:shop@example.com?subject=hi", "mailto:shop@example.com?subject=hi"),
    ],
)
def test_the_click_token_is_appended_to_the_landing_query_as_it_was(
    landing_url: str, expected: str
) -> None:
    assert with_param(landing_url, "bl_click", "T") == expected
