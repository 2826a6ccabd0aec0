"""Admin API v1: API keys, scopes and how keys are stored."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from server.admin_api import api as admin_api
from server.services import Services
from tests.factories import AdminApi, block, error_pointers, problem, redis_contents

PUBLIC = {"/api/v1/openapi.json"}
SAMPLE_ARGUMENTS = {"int": "1"}


def admin_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, concrete URL) of every admin API route that needs a key."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule in PUBLIC:
            continue
        url = re.sub(
            r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLE_ARGUMENTS.get(m.group(1) or "", "x"), rule.rule
        )
        routes += [
            (method, url) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        ]
    return routes


def scoped_routes(scope: str) -> list[tuple[str, str]]:
    """(method, OpenAPI path) of the declared operations that need ``scope``."""
    return [(op.method, op.rule) for op in admin_api.operations if op.scope == scope]


def concrete(rule: str) -> str:
    """A Flask rule with sample values for its parameters."""
    return "/api/v1" + re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) else "x", rule)


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def ingest(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with an ingest-only key."""
    return AdminApi(client, ingest_headers)


def test_every_admin_route_is_covered(app: Flask) -> None:
    routes = admin_routes(app)
    assert len(routes) == len(admin_api.operations) - len(PUBLIC)
    assert ("DELETE", "/api/v1/recipients/x") in routes
    assert ("GET", "/api/v1/campaigns/x/blocks/x/versions/1") in routes


def test_every_admin_route_needs_a_key(app: Flask, client: FlaskClient) -> None:
    for method, url in admin_routes(app):
        response = client.open(url, method=method, json={})
        body = problem(response, 401)
        assert body["title"] == "Unauthorized", (method, url)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, url)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "blk_abc_def",
        "Bearer blk_",
        "Bearer blk__secret",
        "Bearer blk_unknownid_secret",
        "Bearer not-a-blanco-key",
        "Token {key}",
        "Bearer {key}x",
        "Bearer {wrong_secret}",
        "Bearer {other_id}",
    ],
)
def test_invalid_keys_are_unauthorized(
    client: FlaskClient, services: Services, authorization: str
) -> None:
    _, key = services.api_keys.create("real", ["admin"])
    key_id, _, secret = key.removeprefix("blk_").partition("_")
    header = authorization.format(
        key=key,
        wrong_secret=f"blk_{key_id}_{secret[::-1]}",
        other_id=f"blk_{'0' * len(key_id)}_{secret}",
    )
    response = client.get("/api/v1/campaigns", headers={"Authorization": header})
    body = problem(response, 401)
    assert secret not in response.get_data(as_text=True)
    assert "key" in body["detail"].lower()


def test_valid_key_is_accepted_whatever_the_scheme_case(
    client: FlaskClient, services: Services
) -> None:
    _, key = services.api_keys.create("real", ["admin"])
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = client.get("/api/v1/campaigns", headers={"Authorization": f"{scheme} {key}"})
        assert response.status_code == 200, scheme


@pytest.mark.parametrize(("method", "rule"), scoped_routes("admin"))
def test_ingest_key_is_forbidden_on_admin_routes(ingest: AdminApi, method: str, rule: str) -> None:
    response = ingest.request(method, concrete(rule).removeprefix("/api/v1"), json={})
    body = problem(response, 403)
    assert body["title"] == "Forbidden"
    assert "admin" in body["detail"]


def test_admin_routes_include_configuration_tokens_and_erasure() -> None:
    admin_only = scoped_routes("admin")
    for expected in [
        ("POST", "/campaigns"),
        ("PUT", "/campaigns/<campaign_id>/blocks/<block_id>"),
        ("GET", "/campaigns/<campaign_id>/blocks/<block_id>/preview"),
        ("GET", "/recipients/<recipient_id>/token"),
        ("DELETE", "/recipients/<recipient_id>"),
        ("POST", "/api-keys"),
        ("GET", "/api-keys"),
    ]:
        assert expected in admin_only


def test_ingest_key_is_refused_before_anything_changes(
    ingest: AdminApi, services: Services
) -> None:
    problem(ingest.post("/campaigns", json={"id": "daily"}), 403)
    problem(ingest.post("/api-keys", json={"name": "mine", "scopes": ["admin"]}), 403)
    problem(ingest.delete("/recipients/anna"), 403)
    assert services.campaigns.list_campaigns() == []
    assert [k.name for k in services.api_keys.list()] == ["data team"]


def test_ingest_key_may_push_and_read_recipient_data(ingest: AdminApi) -> None:
    assert ingest.put("/recipients/anna/profile", json={"attributes": {"a": 1}}).status_code == 200
    assert ingest.get("/recipients/anna/profile").get_json()["attributes"] == {"a": 1}
    assert (
        ingest.put(
            "/recipients/anna/scores",
            json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 0.5}},
        ).status_code
        == 200
    )
    assert ingest.get("/recipients/anna/scores").status_code == 200
    bulk_profiles = ingest.post(
        "/profiles/bulk",
        data=b'{"recipient_id": "bram", "attributes": {"a": 2}}\n',
        content_type="application/x-ndjson",
    )
    assert bulk_profiles.get_json()["stored"] == 1
    bulk_scores = ingest.post(
        "/scores/bulk",
        data=b'{"recipient_id": "bram", "computed_at": "2026-11-23T06:00:00Z", '
        b'"scores": {"m": 1}}\n',
        content_type="application/x-ndjson",
    )
    assert bulk_scores.get_json()["stored"] == 1


def test_ingest_routes_only_touch_recipient_data() -> None:
    ingest_routes = scoped_routes("ingest")
    assert ("PUT", "/recipients/<recipient_id>/profile") in ingest_routes
    assert ("POST", "/scores/bulk") in ingest_routes
    for method, rule in ingest_routes:
        assert method != "DELETE", rule
        assert not rule.startswith(("/campaigns", "/api-keys")), rule
        assert not rule.endswith("/token"), rule


@pytest.mark.parametrize(("method", "rule"), scoped_routes("ingest"))
def test_admin_key_may_use_ingest_routes(api: AdminApi, method: str, rule: str) -> None:
    response = api.request(method, concrete(rule).removeprefix("/api/v1"), json={})
    assert response.status_code not in (401, 403), response.get_data(as_text=True)


def test_openapi_document_needs_no_key(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200


# managing keys


def test_create_key_shows_it_once_and_it_works(api: AdminApi, client: FlaskClient) -> None:
    response = api.post("/api-keys", json={"name": "ci", "scopes": ["ingest", "ingest"]})
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) == {"id", "name", "scopes", "created_at", "key"}
    assert created["name"] == "ci"
    assert created["scopes"] == ["ingest"]
    assert created["key"].startswith(f"blk_{created['id']}_")
    mine = AdminApi(client, {"Authorization": f"Bearer {created['key']}"})
    assert mine.get("/recipients/anna/profile").status_code == 404
    problem(mine.get("/campaigns"), 403)
    listed = api.get("/api-keys").get_json()
    assert created["key"] not in str(listed)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "x", "scopes": ["root"]}, "/scopes/0"),
        ({"name": "x", "scopes": []}, "/scopes"),
        ({"name": "", "scopes": ["admin"]}, "/name"),
        ({"scopes": ["admin"]}, "/name"),
        ({"name": "x", "scopes": ["admin"], "secret": "mine"}, "/secret"),
    ],
)
def test_invalid_key_request_points_at_the_field(
    api: AdminApi, services: Services, body: dict[str, Any], pointer: str
) -> None:
    assert [p for p, _ in error_pointers(api.post("/api-keys", json=body))] == [pointer]
    assert [k.name for k in services.api_keys.list()] == ["tests"]


def test_key_list_never_shows_secrets(api: AdminApi, services: Services) -> None:
    plain = [services.api_keys.create(f"key {n}", ["ingest"])[1] for n in range(3)]
    response = api.get("/api-keys")
    assert response.status_code == 200
    listed = response.get_json()
    assert [k["name"] for k in listed] == ["tests", "key 0", "key 1", "key 2"]
    for record in listed:
        assert set(record) == {"id", "name", "scopes", "created_at"}
    text = response.get_data(as_text=True)
    for key in plain:
        secret = key.split("_", 2)[2]
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text


def test_keys_are_stored_hashed(
    api: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    created = api.post("/api-keys", json={"name": "ops", "scopes": ["admin"]}).get_json()
    _, ingest_key = services.api_keys.create("data", ["ingest"])
    api.post("/campaigns", json={"id": "daily"})
    api.post("/campaigns/daily/blocks", json=block())
    stored = repr(redis_contents(redis_client))
    for key in (created["key"], ingest_key):
        secret = key.split("_", 2)[2]
        assert key not in stored
        assert secret not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() in stored


def test_revoked_key_is_unauthorized_at_once(
    api: AdminApi, client: FlaskClient, services: Services
) -> None:
    record, key = services.api_keys.create("leaked", ["admin"])
    leaked = AdminApi(client, {"Authorization": f"Bearer {key}"})
    assert leaked.get("/campaigns").status_code == 200
    response = api.delete(f"/api-keys/{record.id}")
    assert response.status_code == 204
    problem(leaked.get("/campaigns"), 401)
    assert record.id not in [k["id"] for k in api.get("/api-keys").get_json()]
    problem(api.delete(f"/api-keys/{record.id}"), 404)


def test_fonts_need_an_admin_key(api: AdminApi, ingest: AdminApi) -> None:
    response = api.get("/fonts")
    assert response.status_code == 200
    assert response.get_json()
    problem(ingest.get("/fonts"), 403)
