"""Cross-channel decisions: the website and the app tell the story the email told."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from models.measurement.event_stream import campaign_event_entries
from models.storage import keys
from server.services import EXTENSION, Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    FakeClock,
    corner_color,
    hex_rgb,
    landing,
    open_every_breaker,
    problem,
    store_block,
    store_recipient,
    variant,
)

HOT = variant("hot", {"score": "travel_propensity", "gte": 0.7}, priority=20, background="#CC0000")
LAPSED = variant("lapsed", {"attr": "lifecycle", "eq": "lapsed"}, priority=10, background="#00AA00")
GMAIL = {"User-Agent": "Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"}
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
DECISION = "/x/v1/campaigns/daily/blocks/hero/decision"


@pytest.fixture
def channel_headers(services: Services) -> dict[str, str]:
    """Authorization headers with a channel-only key, as a website embeds it."""
    _, key = services.api_keys.create("website", ["channel"])
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def targeted(services: Services) -> Services:
    """A block with a score-targeted and an attribute-targeted variant; Anna is a hot lead."""
    store_block(services, [HOT, LAPSED])
    store_recipient(
        services, "anna", {"first_name": "Anna", "lifecycle": "active"}, {"travel_propensity": 0.9}
    )
    return services


def cool_down(services: Services, recipient_id: str = "anna") -> None:
    """Change the recipient so that a fresh decision shows ``lapsed`` instead of ``hot``."""
    store_recipient(services, recipient_id, {"lifecycle": "lapsed"}, {"travel_propensity": 0.1})


def ask(
    client: FlaskClient,
    headers: dict[str, str],
    token: str | None,
    path: str = DECISION,
    **extra_headers: str,
) -> TestResponse:
    return client.get(
        path, query_string={"r": token} if token else {}, headers={**headers, **extra_headers}
    )


def answer(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store, private"
    body: dict[str, Any] = response.get_json()
    return body


def open_email(client: FlaskClient, services: Services, recipient_id: str) -> TestResponse:
    token = services.signer.sign(recipient_id)
    return client.get("/i/daily/hero.png", query_string={"r": token}, headers=GMAIL)


def click_email(client: FlaskClient, services: Services, recipient_id: str) -> str:
    token = services.signer.sign(recipient_id)
    response = client.get(
        "/c/daily/hero", query_string={"r": token}, headers={**GMAIL, "Accept": "text/html"}
    )
    assert response.status_code == 302
    return landing(response)


def site_image(client: FlaskClient, image_url: str) -> TestResponse:
    response = client.get(image_url.removeprefix("http://blanco.test"))
    assert response.status_code == 200
    return response


def stream_types(redis_client: redis.Redis) -> list[str]:
    return [fields["type"] for _, fields in campaign_event_entries(redis_client, "daily")]


def counters(redis_client: redis.Redis) -> dict[str, Any]:
    """Every open/click counter of the campaign: count hashes and unique-count estimates."""
    found: dict[str, Any] = {}
    for key in redis_client.scan_iter(match="blanco:ev:*"):
        kind = redis_client.type(key)
        if kind == "hash":
            found[key] = redis_client.hgetall(key)
        elif kind == "string":  # a HyperLogLog
            found[key] = redis_client.pfcount(key)
    assert found
    return found


def test_answers_what_the_email_showed_even_after_the_scores_changed(
    client: FlaskClient,
    targeted: Services,
    channel_headers: dict[str, str],
    clock: FakeClock,
) -> None:
    opened_at = clock()
    email = open_email(client, targeted, "anna")
    cool_down(targeted)
    clock.advance(hours=3)

    body = answer(ask(client, channel_headers, targeted.signer.sign("anna")))

    stored_version = targeted.campaigns.get_block("daily", "hero")
    assert stored_version is not None
    assert body == {
        "campaign": "daily",
        "block": "hero",
        "variant": "hot",
        "version": stored_version.version,
        "source": "email",
        "decided_at": opened_at.isoformat(),
        "alt": "hot Anna",  # its banner text, filled for Anna (no alt of its own)
        "target_url": "https://shop.example/hot",
        "image_url": (
            "http://blanco.test/x/v1/campaigns/daily/blocks/hero/image.png?r="
            + targeted.signer.sign("anna")
        ),
    }
    assert body["target_url"] == click_email(client, targeted, "anna")
    assert corner_color(site_image(client, body["image_url"]).data) == corner_color(email.data)


def test_answers_the_version_the_email_was_decided_on(
    client: FlaskClient, targeted: Services, channel_headers: dict[str, str]
) -> None:
    open_email(client, targeted, "anna")
    renamed = variant("hot-v2", {"score": "travel_propensity", "gte": 0.7}, priority=20)
    store_block(targeted, [renamed, LAPSED])

    body = answer(ask(client, channel_headers, targeted.signer.sign("anna")))

    assert (body["variant"], body["source"]) == ("hot", "email")
    assert body["target_url"] == "https://shop.example/hot" == click_email(client, targeted, "anna")
    current = targeted.campaigns.get_block("daily", "hero")
    assert current is not None
    assert body["version"] < current.version


def test_decides_now_without_an_open_and_a_locked_open_then_shows_the_same(
    client: FlaskClient, services: Services, channel_headers: dict[str, str], clock: FakeClock
) -> None:
    store_block(services, [HOT, LAPSED], lock_on_first_open=True)
    store_recipient(services, "anna", {"lifecycle": "active"}, {"travel_propensity": 0.9})
    token = services.signer.sign("anna")

    first = answer(ask(client, channel_headers, token))
    assert (first["variant"], first["source"]) == ("hot", "decided")
    assert first["decided_at"] == clock().isoformat()

    cool_down(services)
    clock.advance(hours=2)
    email = open_email(client, services, "anna")
    assert corner_color(email.data) == hex_rgb("#CC0000")
    assert click_email(client, services, "anna") == first["target_url"]
    again = answer(ask(client, channel_headers, token))
    assert (again["variant"], again["decided_at"]) == ("hot", first["decided_at"])


def test_a_click_without_an_open_follows_the_channel_decision(
    client: FlaskClient, targeted: Services, channel_headers: dict[str, str]
) -> None:
    decided = answer(ask(client, channel_headers, targeted.signer.sign("anna")))
    cool_down(targeted)
    assert click_email(client, targeted, "anna") == decided["target_url"]


def test_without_lock_the_channel_decides_afresh_until_an_email_decides(
    client: FlaskClient, targeted: Services, channel_headers: dict[str, str]
) -> None:
    token = targeted.signer.sign("anna")
    assert answer(ask(client, channel_headers, token))["variant"] == "hot"
    cool_down(targeted)
    assert answer(ask(client, channel_headers, token))["variant"] == "lapsed"

    open_email(client, targeted, "anna")  # the email decides now: lapsed
    store_recipient(targeted, "anna", {"lifecycle": "active"}, {"travel_propensity": 0.9})
    body = answer(ask(client, channel_headers, token))
    assert (body["variant"], body["source"]) == ("lapsed", "email")


@pytest.mark.parametrize(
    "token",
    [None, "", "anna", "anna.forged-signature", "anna.AAAAAAAAAAAAAAAAAAAAAA", "x" * 300],
)
def test_a_missing_or_bad_token_gets_the_generic_answer(
    client: FlaskClient,
    targeted: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
    token: str | None,
) -> None:
    open_email(client, targeted, "anna")
    decisions_before = redis_client.hgetall(keys.decisions("anna"))

    response = ask(client, channel_headers, token)
    body = answer(response)

    assert body["variant"] is None
    assert body["source"] == "decided"
    assert body["target_url"] == FALLBACK_URL
    assert body["image_url"] == "http://blanco.test/x/v1/campaigns/daily/blocks/hero/image.png"
    assert "Anna" not in response.get_data(as_text=True)
    assert corner_color(site_image(client, body["image_url"]).data) == hex_rgb(FALLBACK_BACKGROUND)
    assert redis_client.hgetall(keys.decisions("anna")) == decisions_before


def test_an_unknown_recipient_gets_the_fallback(
    client: FlaskClient, targeted: Services, channel_headers: dict[str, str]
) -> None:
    body = answer(ask(client, channel_headers, targeted.signer.sign("nobody")))
    assert (body["variant"], body["target_url"]) == (None, FALLBACK_URL)


def test_an_erased_recipient_gets_the_generic_answer(
    client: FlaskClient,
    targeted: Services,
    channel_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    open_email(client, targeted, "anna")
    assert client.delete("/api/v1/recipients/anna", headers=admin_headers).status_code == 204
    body = answer(ask(client, channel_headers, targeted.signer.sign("anna")))
    assert (body["variant"], body["target_url"]) == (None, FALLBACK_URL)
    assert "?r=" not in body["image_url"]


@pytest.mark.parametrize(
    "path",
    [
        "/x/v1/campaigns/nope/blocks/hero/decision",
        "/x/v1/campaigns/daily/blocks/nope/decision",
    ],
)
def test_unknown_campaign_or_block_is_a_404_problem(
    client: FlaskClient, targeted: Services, channel_headers: dict[str, str], path: str
) -> None:
    response = ask(client, channel_headers, targeted.signer.sign("anna"), path)
    problem(response, 404)
    assert response.headers["Cache-Control"] == "no-store, private"


def test_client_and_device_conditions_see_a_web_visit(
    client: FlaskClient, services: Services, channel_headers: dict[str, str]
) -> None:
    store_block(
        services,
        [
            variant("prefetch-safe", {"client": ["apple_mpp", "gmail_proxy"]}, priority=30),
            variant("phone", {"device": ["mobile"]}, priority=20),
            variant("on-site", {"client": ["web"]}, priority=10),
        ],
    )
    for name in ("anna", "bram", "chloe"):
        store_recipient(services, name)

    def chosen(recipient_id: str, user_agent: str | None) -> Any:
        headers = {**channel_headers, **({"User-Agent": user_agent} if user_agent else {})}
        return answer(ask(client, headers, services.signer.sign(recipient_id)))["variant"]

    assert chosen("anna", IPHONE_SAFARI) == "phone"
    assert chosen("bram", DESKTOP_CHROME) == "on-site"
    assert chosen("chloe", None) == "on-site"


def test_channel_calls_count_no_open_or_click(
    client: FlaskClient,
    targeted: Services,
    channel_headers: dict[str, str],
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    store_recipient(targeted, "bram", {"lifecycle": "active"}, {"travel_propensity": 0.8})
    open_email(client, targeted, "anna")
    click_email(client, targeted, "anna")
    before = counters(redis_client)
    report = client.get("/api/v1/campaigns/daily/report", headers=admin_headers).get_json()

    for recipient_id in ("anna", "bram", "anna"):  # what the email showed, decided now, again
        body = answer(ask(client, channel_headers, targeted.signer.sign(recipient_id)))
        site_image(client, body["image_url"])
    answer(ask(client, channel_headers, None))

    assert counters(redis_client) == before
    assert client.get("/api/v1/campaigns/daily/report", headers=admin_headers).get_json() == report
    assert stream_types(redis_client) == ["open", "click", "view", "view", "view"]
    views = [f for _, f in campaign_event_entries(redis_client, "daily")][2:]
    assert {f["client"] for f in views} == {"web"}
    assert "anna" not in repr(views)


def test_site_image_shows_the_decision_without_an_open(
    client: FlaskClient,
    targeted: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    body = answer(ask(client, channel_headers, targeted.signer.sign("anna")))
    cool_down(targeted)
    image = site_image(client, body["image_url"])
    assert image.mimetype == "image/png"
    assert image.headers["Cache-Control"] == "no-store, private"
    assert corner_color(image.data) == hex_rgb("#CC0000")
    assert "open" not in stream_types(redis_client)


def test_the_site_image_right_after_the_decision_shows_it_while_events_wait(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    """The page fetches the image as soon as it has the decision: the decision is stored
    before the answer, even when events are written in the background (and late)."""
    app = make_app(record_in_background=True)
    services: Services = app.extensions[EXTENSION]
    recorder = app.extensions["blanco.open"].recorder
    recorder.linger, recorder.rides = 0.5, False  # a busy writer: events come late
    store_block(services, [HOT, LAPSED])
    store_recipient(services, "anna", {"lifecycle": "active"}, {"travel_propensity": 0.9})
    _, key = services.api_keys.create("website", ["channel"])
    client = app.test_client()
    body = answer(ask(client, {"Authorization": f"Bearer {key}"}, services.signer.sign("anna")))
    image = site_image(client, body["image_url"])
    assert "X-Blanco-Fallback" not in image.headers
    assert corner_color(image.data) == hex_rgb("#CC0000")
    assert stream_types(redis_client) == []  # the view event is still on its way
    app.extensions["blanco.open"].recorder.flush()
    assert stream_types(redis_client) == ["view"]


def test_site_image_of_a_recipient_without_a_decision_is_the_fallback(
    client: FlaskClient, targeted: Services
) -> None:
    token = targeted.signer.sign("anna")
    image = client.get("/x/v1/campaigns/daily/blocks/hero/image.png", query_string={"r": token})
    assert corner_color(image.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert image.headers["X-Blanco-Fallback"] == "no decision"


def test_when_redis_is_away_the_decision_is_a_503_problem(
    app: Flask, client: FlaskClient, targeted: Services, channel_headers: dict[str, str]
) -> None:
    open_every_breaker(app)
    response = ask(client, channel_headers, targeted.signer.sign("anna"))
    problem(response, 503)
    window = targeted.settings.redis_retry_after_seconds  # the breaker's, in whole seconds
    assert response.headers["Retry-After"] == str(max(1, math.ceil(window)))
    image = client.get("/x/v1/campaigns/daily/blocks/hero/image.png")
    assert image.status_code == 200


def test_the_site_image_needs_no_key_and_decides_and_records_nothing(
    app: Flask, client: FlaskClient, targeted: Services, redis_client: redis.Redis
) -> None:
    token = targeted.signer.sign("anna")
    image = client.get("/x/v1/campaigns/daily/blocks/hero/image.png", query_string={"r": token})
    assert image.status_code == 200  # no Authorization header
    assert image.headers["X-Blanco-Fallback"] == "no decision"
    app.extensions["blanco.open"].recorder.flush()
    assert not redis_client.exists(keys.decisions("anna"))
    assert list(campaign_event_entries(redis_client, "daily")) == []
    # the email's open still decides afresh: the site image fixed nothing
    assert corner_color(open_email(client, targeted, "anna").data) == hex_rgb("#CC0000")
