"""Deeply nested input: refused at the boundary with a pointer, never a 500, never half-stored.

Conditions nest at most 32 levels (so every stored block can be read back), every JSON body and
every JSON Lines line at most 100 levels (checked before a parser recurses).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.campaigns.conditions import MAX_CONDITION_DEPTH
from models.ingest.json_input import MAX_JSON_DEPTH
from models.storage import keys
from server.services import Services
from tests.factories import (
    AdminApi,
    block,
    corner_color,
    error_pointers,
    hex_rgb,
    jsonl,
    problem,
    store_block,
    store_recipient,
    variant,
)

NDJSON = "application/x-ndjson"
JSON = "application/json"
DEEP_JSON = "[" * 1000 + "]" * 1000


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def nots(levels: int) -> dict[str, Any]:
    """A condition of ``levels`` levels: ``not`` around ``not`` around a segment test."""
    condition: dict[str, Any] = {"segment": "vip"}
    for _ in range(levels - 1):
        condition = {"not": condition}
    return condition


def test_a_condition_deeper_than_the_limit_is_refused_and_nothing_is_stored(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    api.post("/campaigns", json={"id": "daily"})
    deeper = block(variants=[variant("v", nots(MAX_CONDITION_DEPTH + 1))])
    response = api.post("/campaigns/daily/blocks", json=deeper)
    assert error_pointers(response) == [("/variants/0/when", "variants.0.when")]
    assert "at most 32 levels" in problem(response, 422)["errors"][0]["detail"]
    far_deeper = block(variants=[variant("v", nots(198))])  # the JSON nesting limit first
    response = api.post("/campaigns/daily/blocks", json=far_deeper)
    assert error_pointers(response)[0][0].startswith("/variants/0/when/not/not/not/")
    assert redis_client.get(keys.block("daily", "hero")) is None
    assert api.get("/campaigns/daily/blocks").get_json() == []


def test_a_condition_at_the_limit_is_stored_and_every_block_route_reads_it(
    api: AdminApi, client: FlaskClient, services: Services
) -> None:
    api.post("/campaigns", json={"id": "daily"})
    deepest = variant("v", nots(MAX_CONDITION_DEPTH), background="#CC0000")
    assert api.post("/campaigns/daily/blocks", json=block(variants=[deepest])).status_code == 201
    assert api.get("/campaigns/daily/blocks/hero").get_json()["variants"][0]["when"] == nots(
        MAX_CONDITION_DEPTH
    )
    assert api.get("/campaigns/daily/blocks").status_code == 200
    assert api.get("/campaigns/daily/blocks/hero/versions/1").status_code == 200
    store_recipient(services, "anna")
    token = services.signer.sign("anna")
    opened = client.get("/i/daily/hero.png", query_string={"r": token})
    assert "X-Blanco-Fallback" not in opened.headers
    assert corner_color(opened.data) == hex_rgb("#CC0000")  # 31 nots of "vip": true


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/campaigns"),
        ("PUT", "/campaigns/daily/blocks/hero"),
        ("PUT", "/recipients/anna/profile"),
        ("PUT", "/recipients/anna/scores"),
        ("PUT", "/personas"),
        ("PUT", "/live/flights"),
        ("PUT", "/campaigns/daily/newsletter"),
        ("PUT", "/feeds/trips/items/i1"),
    ],
)
def test_json_bodies_nested_too_deep_are_refused_with_a_pointer(
    api: AdminApi, method: str, path: str
) -> None:
    api.post("/campaigns", json={"id": "daily"})
    body = '{"attributes": {"x": ' + DEEP_JSON + "}}"
    response = api.request(method, path, data=body, content_type=JSON)
    errors = problem(response, 422)["errors"]
    assert errors[0]["pointer"] == "/attributes/x" + "/0" * (MAX_JSON_DEPTH - 2)
    assert errors[0]["detail"] == f"nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"


def test_brackets_inside_strings_do_not_count(api: AdminApi) -> None:
    name = "[{" * 600 + '\\"' + "]}" * 600
    response = api.put("/recipients/anna/profile", json={"attributes": {"note": name[:2000]}})
    assert response.status_code == 200


def _profile(n: int) -> dict[str, Any]:
    return {"recipient_id": f"r{n}", "attributes": {"first_name": f"R{n}"}}


def _score(n: int) -> dict[str, Any]:
    return {"recipient_id": f"r{n}", "computed_at": "2026-11-23T06:00:00Z", "scores": {"p": 0.5}}


def _order(n: int) -> dict[str, Any]:
    return {
        "recipient_id": f"r{n}",
        "order_id": f"o{n}",
        "at": "2026-11-20T12:00:00+01:00",
        "amount": "9.95",
        "currency": "EUR",
    }


def _event(n: int) -> dict[str, Any]:
    return {"recipient_id": f"r{n}", "type": "site_visit", "at": "2026-11-20T12:00:00+01:00"}


def _item(n: int) -> dict[str, Any]:
    return {"id": f"i{n}", "title": f"Trip {n}", "url": f"https://shop.example/{n}"}


@pytest.mark.parametrize(
    ("path", "row"),
    [
        ("/profiles/bulk", _profile),
        ("/scores/bulk", _score),
        ("/transactions/bulk", _order),
        ("/events/bulk", _event),
        ("/feeds/trips/items/bulk", _item),
    ],
)
def test_a_deep_line_in_bulk_is_reported_and_every_good_line_is_stored(
    api: AdminApi, path: str, row: Any
) -> None:
    rows: list[dict[str, Any] | str] = [row(n) for n in range(2500)]
    rows.insert(2000, DEEP_JSON)
    response = api.post(path, data=jsonl(*rows), content_type=NDJSON)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (2501, 2500, 1)
    assert report["errors"] == [
        {
            "line": 2001,
            "pointer": "/0" * MAX_JSON_DEPTH,
            "detail": f"nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
        }
    ]


def test_a_stored_block_too_deep_to_read_serves_the_fallback_and_can_be_deleted(
    api: AdminApi, client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    """A document written before the limits (or by hand) that cannot be parsed back."""
    stored = store_block(services, [variant("v", {"segment": "vip"})])
    document = stored.model_dump_json(by_alias=True, exclude_none=True)
    too_deep = document.replace(
        '{"segment":"vip"}', '{"not":' * 300 + '{"segment":"vip"}' + "}" * 300
    )
    redis_client.set(keys.block("daily", "hero"), too_deep)
    token = services.signer.sign("anna")
    opened = client.get("/i/daily/hero.png", query_string={"r": token})
    assert opened.status_code == 200
    assert opened.mimetype == "image/png"
    assert client.get("/c/daily/hero", query_string={"r": token}).status_code == 302
    assert api.delete("/campaigns/daily/blocks/hero").status_code == 204
    assert api.get("/campaigns/daily/blocks").get_json() == []
