"""Cross-channel endpoints: channel keys, what they may not do, and CORS for configured origins."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.admin_api import api as admin_api
from server.cli.main import build_parser
from server.config import ConfigError, load_settings
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.factories import AdminApi, problem, store_block, store_recipient, variant

SITE = "https://www.example.com"
APP_DEV = "http://localhost:3000"
DECISION = "/x/v1/campaigns/daily/blocks/hero/decision"
SLOTS = "/x/v1/campaigns/daily/slots"
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with two allowed origins."""
    return make_app(channel_origins=f"{SITE}, {APP_DEV}")


@pytest.fixture
def stored(services: Services) -> Services:
    store_block(services, [variant("everyone")])
    store_recipient(services, "anna")
    return services


def key_headers(services: Services, *scopes: Any) -> dict[str, str]:
    _, key = services.api_keys.create("key", list(scopes))
    return {"Authorization": f"Bearer {key}"}


def decision(
    client: FlaskClient, services: Services, headers: dict[str, str], method: str = "GET"
) -> Any:
    token = services.signer.sign("anna")
    return client.open(DECISION, method=method, query_string={"r": token}, headers=headers)


# keys and scopes


def test_a_channel_key_reads_decisions(client: FlaskClient, stored: Services) -> None:
    response = decision(client, stored, key_headers(stored, "channel"))
    assert response.status_code == 200
    assert response.get_json()["variant"] == "everyone"


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer blk_unknownid_secret"]
)
def test_no_valid_key_is_a_401_problem(
    client: FlaskClient, stored: Services, authorization: str
) -> None:
    response = decision(client, stored, {"Authorization": authorization, "Origin": SITE})
    body = problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "key" in body["detail"].lower()
    assert response.headers["Access-Control-Allow-Origin"] == SITE  # the page can read why
    assert "Anna" not in response.get_data(as_text=True)


def test_an_ingest_key_is_forbidden(client: FlaskClient, stored: Services) -> None:
    body = problem(decision(client, stored, key_headers(stored, "ingest")), 403)
    assert "channel" in body["detail"]
    problem(client.get(SLOTS, headers=key_headers(stored, "ingest")), 403)


def test_an_admin_key_may_call_server_side_but_never_from_a_page(
    client: FlaskClient, stored: Services
) -> None:
    admin = key_headers(stored, "admin")
    assert decision(client, stored, admin).status_code == 200
    body = problem(decision(client, stored, {**admin, "Origin": SITE}), 403)
    assert "channel" in body["detail"]
    mixed = key_headers(stored, "channel", "ingest")
    problem(decision(client, stored, {**mixed, "Origin": SITE}), 403)
    channel = {**key_headers(stored, "channel"), "Origin": SITE}
    assert decision(client, stored, channel).status_code == 200


def admin_operations() -> list[tuple[str, str]]:
    return [(op.method, op.rule) for op in admin_api.operations if op.scope is not None]


@pytest.mark.parametrize(("method", "rule"), admin_operations())
def test_a_channel_key_grants_nothing_in_the_admin_api(
    client: FlaskClient, services: Services, method: str, rule: str
) -> None:
    channel = AdminApi(client, key_headers(services, "channel"))
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) else "x", rule)
    problem(channel.request(method, path, json={}), 403)


def test_the_admin_api_creates_channel_keys(
    client: FlaskClient, stored: Services, admin_headers: dict[str, str]
) -> None:
    api = AdminApi(client, admin_headers)
    created = api.post("/api-keys", json={"name": "website", "scopes": ["channel"]})
    assert created.status_code == 201
    assert created.get_json()["scopes"] == ["channel"]
    headers = {"Authorization": f"Bearer {created.get_json()['key']}", "Origin": SITE}
    assert decision(client, stored, headers).status_code == 200
    problem(AdminApi(client, headers).get("/campaigns"), 403)


def test_the_cli_creates_channel_keys() -> None:
    args = build_parser().parse_args(["api-key", "--name", "website", "--scope", "channel"])
    assert args.scope == ["channel"]


# CORS and caching


def test_an_allowed_origin_is_echoed_exactly(client: FlaskClient, stored: Services) -> None:
    for origin in (SITE, APP_DEV):
        headers = {**key_headers(stored, "channel"), "Origin": origin}
        response = decision(client, stored, headers)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response.headers["Vary"]
        assert response.headers["Cache-Control"] == "no-store, private"
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://www.example.com.evil.example", "null", "*"]
)
def test_a_disallowed_origin_gets_no_cors_headers_and_is_refused(
    client: FlaskClient, stored: Services, origin: str
) -> None:
    response = decision(client, stored, {**key_headers(stored, "channel"), "Origin": origin})
    body = problem(response, 403)
    assert "origin" in body["detail"]
    assert not any(name in response.headers for name in CORS_HEADERS)
    assert "Origin" in response.headers["Vary"]


def test_without_origin_there_are_no_cors_headers(client: FlaskClient, stored: Services) -> None:
    response = decision(client, stored, key_headers(stored, "channel"))
    assert response.status_code == 200
    assert not any(name in response.headers for name in CORS_HEADERS)
    assert response.headers["Cache-Control"] == "no-store, private"


@pytest.mark.parametrize("path", [DECISION, SLOTS])
def test_preflight_of_an_allowed_origin_needs_no_key(client: FlaskClient, path: str) -> None:
    response = client.options(
        path,
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert response.data == b""


def test_preflight_of_a_disallowed_origin_allows_nothing(client: FlaskClient) -> None:
    response = client.options(
        DECISION,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 204
    assert not any(name in response.headers for name in CORS_HEADERS)


def test_without_configured_origins_no_page_may_call(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    preflight = client.options(DECISION, headers={"Origin": SITE})
    assert "Access-Control-Allow-Origin" not in preflight.headers


# the setting


def settings(origins: str) -> Any:
    return load_settings({"signing_keys": SIGNING_KEY, "channel_origins": origins}, environ={})


def test_origins_are_read_from_the_environment_and_normalised() -> None:
    environ = {
        "BLANCO_SIGNING_KEYS": SIGNING_KEY,
        "BLANCO_CHANNEL_ORIGINS": "HTTPS://WWW.Example.com , https://app.example.com:443,"
        "http://localhost:3000",
    }
    assert load_settings(environ=environ).channel_origins == (
        SITE,
        "https://app.example.com",
        APP_DEV,
    )
    assert settings("").channel_origins == ()


@pytest.mark.parametrize(
    "origins",
    [
        "*",
        "https://*.example.com",
        "www.example.com",
        "ftp://www.example.com",
        "https://www.example.com/",
        "https://www.example.com/shop",
        "https://www.example.com?x=1",
        "https://user@www.example.com",
        "https://www.example.com:99999",
        f"{SITE},null",
    ],
)
def test_an_origin_that_is_not_scheme_and_host_stops_start_up(origins: str) -> None:
    with pytest.raises(ConfigError, match="BLANCO_CHANNEL_ORIGINS"):
        settings(origins)
