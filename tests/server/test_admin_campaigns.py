"""Admin API v1: campaigns, versioned blocks, variants and fallbacks over HTTP."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.storage import keys
from tests.factories import (
    AdminApi,
    banner,
    block,
    error_pointers,
    problem,
    redis_contents,
    variant,
)

HERO = "/campaigns/daily/blocks/hero"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def campaign(api: AdminApi) -> dict[str, Any]:
    """The stored campaign ``daily``."""
    response = api.post("/campaigns", json={"id": "daily", "name": "Daily"})
    assert response.status_code == 201
    document: dict[str, Any] = response.get_json()
    return document


@pytest.fixture
def hero(api: AdminApi, campaign: dict[str, Any]) -> dict[str, Any]:
    """Block ``hero`` (version 1) with variants ``a`` and ``b``."""
    response = api.post(
        "/campaigns/daily/blocks", json=block(variants=[variant("a"), variant("b")])
    )
    assert response.status_code == 201
    document: dict[str, Any] = response.get_json()
    return document


def current(api: AdminApi) -> dict[str, Any]:
    """The current version of ``hero`` as the API shows it."""
    response = api.get(HERO)
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    assert response.headers["ETag"] == f'"{document["version"]}"'
    return document


def versions(api: AdminApi) -> list[int]:
    """The kept version numbers of ``hero``."""
    response = api.get(f"{HERO}/versions")
    assert response.status_code == 200
    found: list[int] = response.get_json()["versions"]
    return found


# campaigns


def test_create_campaign_answers_it_with_its_location(
    api: AdminApi, campaign: dict[str, Any]
) -> None:
    assert campaign["id"] == "daily"
    assert campaign["name"] == "Daily"
    assert campaign["status"] == "active"
    assert campaign["created_at"] == campaign["updated_at"]
    response = api.get("/campaigns/daily")
    assert response.status_code == 200
    assert response.get_json() == campaign


def test_create_campaign_sets_location(api: AdminApi) -> None:
    response = api.post("/campaigns", json={"id": "spring"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/campaigns/spring"
    assert api.get(response.headers["Location"].removeprefix("/api/v1")).status_code == 200


def test_list_campaigns_by_id(api: AdminApi) -> None:
    for campaign_id in ("zeta", "alpha", "mid"):
        assert api.post("/campaigns", json={"id": campaign_id}).status_code == 201
    response = api.get("/campaigns")
    assert response.status_code == 200
    assert [c["id"] for c in response.get_json()] == ["alpha", "mid", "zeta"]


def test_duplicate_campaign_is_a_conflict_and_keeps_the_first(
    api: AdminApi, campaign: dict[str, Any]
) -> None:
    body = problem(api.post("/campaigns", json={"id": "daily", "name": "Other"}), 409)
    assert body["title"] == "Conflict"
    assert "daily" in body["detail"]
    assert api.get("/campaigns/daily").get_json() == campaign


def test_put_campaign_replaces_settings_and_keeps_created_at(
    api: AdminApi, campaign: dict[str, Any]
) -> None:
    response = api.put("/campaigns/daily", json={"name": "Daily mail", "status": "paused"})
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["id"] == "daily"
    assert updated["name"] == "Daily mail"
    assert updated["status"] == "paused"
    assert updated["created_at"] == campaign["created_at"]
    assert api.get("/campaigns/daily").get_json() == updated


def test_put_unknown_campaign_is_not_found_and_creates_nothing(api: AdminApi) -> None:
    problem(api.put("/campaigns/nope", json={"name": "x"}), 404)
    problem(api.get("/campaigns/nope"), 404)
    assert api.get("/campaigns").get_json() == []


def test_delete_campaign_removes_it_with_its_blocks(
    api: AdminApi, hero: dict[str, Any], redis_client: redis.Redis
) -> None:
    response = api.delete("/campaigns/daily")
    assert response.status_code == 204
    assert response.data == b""
    problem(api.get("/campaigns/daily"), 404)
    problem(api.get(HERO), 404)
    problem(api.get("/campaigns/daily/blocks"), 404)
    problem(api.get(f"{HERO}/versions"), 404)
    assert api.get("/campaigns").get_json() == []
    left = list(redis_client.scan_iter(match=f"{keys.campaign('daily').rsplit(':', 1)[0]}*"))
    assert all(key.endswith(":version-counter") for key in left), left
    problem(api.delete("/campaigns/daily"), 404)


# blocks


def test_create_block_is_version_one(api: AdminApi, hero: dict[str, Any]) -> None:
    assert hero["version"] == 1
    assert hero["campaign_id"] == "daily"
    assert [v["id"] for v in hero["variants"]] == ["a", "b"]
    assert hero["fallback"]["target_url"] == "https://shop.example/generic"
    assert current(api) == hero
    assert versions(api) == [1]


def test_create_block_answers_etag_and_location(api: AdminApi, campaign: dict[str, Any]) -> None:
    response = api.post("/campaigns/daily/blocks", json=block("side"))
    assert response.status_code == 201
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == "/api/v1/campaigns/daily/blocks/side"


def test_list_blocks_shows_current_versions(api: AdminApi, hero: dict[str, Any]) -> None:
    assert api.post("/campaigns/daily/blocks", json=block("footer")).status_code == 201
    assert api.put(HERO, json=block(variants=[variant("c")])).status_code == 200
    listed = api.get("/campaigns/daily/blocks").get_json()
    assert [(b["id"], b["version"]) for b in listed] == [("footer", 1), ("hero", 2)]


def test_duplicate_block_is_a_conflict_and_keeps_the_first(
    api: AdminApi, hero: dict[str, Any]
) -> None:
    problem(api.post("/campaigns/daily/blocks", json=block(variants=[variant("other")])), 409)
    assert current(api) == hero
    assert versions(api) == [1]


def test_block_in_unknown_campaign_is_not_found(api: AdminApi) -> None:
    problem(api.post("/campaigns/nope/blocks", json=block()), 404)
    problem(api.put("/campaigns/nope/blocks/hero", json=block()), 404)


def test_put_block_creates_then_replaces(api: AdminApi, campaign: dict[str, Any]) -> None:
    created = api.put(HERO, json=block(variants=[variant("a")]))
    assert created.status_code == 201
    assert created.get_json()["version"] == 1
    replaced = api.put(HERO, json=block(variants=[variant("z")]))
    assert replaced.status_code == 200
    assert replaced.headers["ETag"] == '"2"'
    assert [v["id"] for v in replaced.get_json()["variants"]] == ["z"]
    assert [v["id"] for v in current(api)["variants"]] == ["z"]


def test_put_block_may_omit_the_id_the_url_names(api: AdminApi, hero: dict[str, Any]) -> None:
    document = block(variants=[variant("a")])
    del document["id"]
    response = api.put(HERO, json=document)
    assert response.status_code == 200
    assert response.get_json()["id"] == "hero"


def test_every_change_is_a_new_version(api: AdminApi, hero: dict[str, Any]) -> None:
    changes = [
        api.put(HERO, json=block(variants=[variant("a"), variant("b")], name="Hero")),
        api.put(
            f"{HERO}/fallback",
            json={"content": banner("Generic"), "target_url": "https://shop.example/new"},
        ),
        api.post(f"{HERO}/variants", json=variant("c")),
        api.put(f"{HERO}/variants/a", json=variant("a", target_url="https://shop.example/a2")),
        api.delete(f"{HERO}/variants/b"),
    ]
    assert [r.status_code for r in changes] == [200, 200, 201, 200, 204]
    assert [r.headers.get("ETag") for r in changes[:4]] == ['"2"', '"3"', '"4"', '"5"']
    assert versions(api) == [1, 2, 3, 4, 5, 6]
    now = current(api)
    assert now["version"] == 6
    assert [v["id"] for v in now["variants"]] == ["a", "c"]
    assert now["variants"][0]["target_url"] == "https://shop.example/a2"
    assert now["fallback"]["target_url"] == "https://shop.example/new"
    assert now["name"] == "Hero"


def test_get_version_shows_the_block_as_it_was(api: AdminApi, hero: dict[str, Any]) -> None:
    api.put(
        f"{HERO}/fallback",
        json={"content": banner("Generic"), "target_url": "https://shop.example/new"},
    )
    api.post(f"{HERO}/variants", json=variant("c"))
    first = api.get(f"{HERO}/versions/1")
    assert first.status_code == 200
    assert first.headers["ETag"] == '"1"'
    assert first.get_json() == hero
    second = api.get(f"{HERO}/versions/2").get_json()
    assert second["fallback"]["target_url"] == "https://shop.example/new"
    assert [v["id"] for v in second["variants"]] == ["a", "b"]
    third = api.get(f"{HERO}/versions/3").get_json()
    assert [v["id"] for v in third["variants"]] == ["a", "b", "c"]
    assert third == current(api)


def test_unknown_version_is_not_found(api: AdminApi, hero: dict[str, Any]) -> None:
    problem(api.get(f"{HERO}/versions/2"), 404)
    problem(api.get(f"{HERO}/versions/0"), 404)
    problem(api.get(f"{HERO}/versions/latest"), 404)


def test_history_keeps_the_configured_number_of_versions(
    make_app: Callable[..., Flask], admin_headers: dict[str, str]
) -> None:
    app = make_app(block_history=3)
    api = AdminApi(app.test_client(), admin_headers)
    api.post("/campaigns", json={"id": "daily"})
    for n in range(5):
        assert api.put(HERO, json=block(name=f"edit {n}")).status_code in (200, 201)
    assert versions(api) == [3, 4, 5]
    problem(api.get(f"{HERO}/versions/2"), 404)
    assert api.get(f"{HERO}/versions/3").get_json()["name"] == "edit 2"


# If-Match


def test_put_with_the_current_version_succeeds(api: AdminApi, hero: dict[str, Any]) -> None:
    response = api.put(HERO, json=block(name="mine"), headers={"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.get_json()["version"] == 2
    weak = api.put(HERO, json=block(name="again"), headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    assert weak.get_json()["version"] == 3


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", HERO, block(name="late")),
        (
            "PUT",
            f"{HERO}/fallback",
            {"content": banner("x"), "target_url": "https://shop.example/late"},
        ),
        ("POST", f"{HERO}/variants", variant("late")),
        ("PUT", f"{HERO}/variants/a", variant("a", priority=7)),
        ("DELETE", f"{HERO}/variants/a", None),
    ],
)
def test_a_stale_if_match_is_refused_and_changes_nothing(
    api: AdminApi, hero: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert api.put(HERO, json=block(variants=[variant("a"), variant("b")])).status_code == 200
    before = current(api)
    response = api.request(method, path, json=body, headers={"If-Match": '"1"'})
    found = problem(response, 412)
    assert found["title"] == "Precondition failed"
    assert "version 2" in found["detail"]
    assert current(api) == before
    assert versions(api) == [1, 2]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "PUT",
            f"{HERO}/fallback",
            {"content": banner("x"), "target_url": "https://shop.example/mine"},
        ),
        ("POST", f"{HERO}/variants", variant("mine")),
        ("PUT", f"{HERO}/variants/a", variant("a", priority=7)),
        ("DELETE", f"{HERO}/variants/b", None),
    ],
)
def test_a_current_if_match_is_accepted_on_parts(
    api: AdminApi, hero: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = api.request(method, path, json=body, headers={"If-Match": '"1"'})
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)
    assert versions(api) == [1, 2]


@pytest.mark.parametrize("header", ["abc", '"one"', '"1", "2"', '"-1"'])
def test_if_match_that_names_no_version_is_refused(
    api: AdminApi, hero: dict[str, Any], header: str
) -> None:
    problem(api.put(HERO, json=block(name="x"), headers={"If-Match": header}), 412)
    assert current(api) == hero


def test_if_match_on_a_missing_block_is_refused(api: AdminApi, campaign: dict[str, Any]) -> None:
    problem(api.put(HERO, json=block(), headers={"If-Match": '"1"'}), 412)
    problem(api.get(HERO), 404)


# deleting


def test_delete_block_keeps_its_history(api: AdminApi, hero: dict[str, Any]) -> None:
    response = api.delete(HERO)
    assert response.status_code == 204
    assert response.data == b""
    problem(api.get(HERO), 404)
    problem(api.get(f"{HERO}/variants"), 404)
    assert api.get("/campaigns/daily/blocks").get_json() == []
    assert versions(api) == [1]
    assert api.get(f"{HERO}/versions/1").get_json() == hero
    problem(api.delete(HERO), 404)


def test_recreated_block_continues_the_numbering(api: AdminApi, hero: dict[str, Any]) -> None:
    api.put(HERO, json=block(name="two"))
    api.delete(HERO)
    response = api.post("/campaigns/daily/blocks", json=block(name="three"))
    assert response.status_code == 201
    assert response.get_json()["version"] == 3
    assert versions(api) == [1, 2, 3]
    assert api.get(f"{HERO}/versions/2").get_json()["name"] == "two"


def test_delete_variant_makes_a_version_without_it(api: AdminApi, hero: dict[str, Any]) -> None:
    response = api.delete(f"{HERO}/variants/a")
    assert response.status_code == 204
    assert [v["id"] for v in current(api)["variants"]] == ["b"]
    problem(api.get(f"{HERO}/variants/a"), 404)
    problem(api.delete(f"{HERO}/variants/a"), 404)
    assert versions(api) == [1, 2]


# variants and fallback


def test_list_and_get_variants(api: AdminApi, hero: dict[str, Any]) -> None:
    listed = api.get(f"{HERO}/variants")
    assert listed.status_code == 200
    assert listed.get_json() == hero["variants"]
    one = api.get(f"{HERO}/variants/b")
    assert one.status_code == 200
    assert one.get_json() == hero["variants"][1]


def test_add_variant(api: AdminApi, hero: dict[str, Any]) -> None:
    added = variant("vip", {"segment": "vip"}, priority=50)
    response = api.post(f"{HERO}/variants", json=added)
    assert response.status_code == 201
    assert response.headers["ETag"] == '"2"'
    shown = response.get_json()
    assert shown["id"] == "vip"
    assert shown["when"] == {"segment": "vip"}
    assert shown["priority"] == 50
    assert api.get(f"{HERO}/variants/vip").get_json() == shown
    assert [v["id"] for v in current(api)["variants"]] == ["a", "b", "vip"]


def test_duplicate_variant_is_a_conflict(api: AdminApi, hero: dict[str, Any]) -> None:
    problem(api.post(f"{HERO}/variants", json=variant("a", priority=9)), 409)
    assert current(api) == hero


def test_put_variant_replaces_only_that_variant(api: AdminApi, hero: dict[str, Any]) -> None:
    replacement = variant("a", {"attr": "country", "in": ["NL", "BE"]}, background="#010203")
    del replacement["id"]
    response = api.put(f"{HERO}/variants/a", json=replacement)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    now = current(api)
    assert now["variants"][0]["when"] == {"attr": "country", "in": ["NL", "BE"]}
    assert now["variants"][0]["content"]["background"] == "#010203"
    assert now["variants"][1] == hero["variants"][1]


def test_put_unknown_variant_is_not_found(api: AdminApi, hero: dict[str, Any]) -> None:
    problem(api.put(f"{HERO}/variants/zzz", json=variant("zzz")), 404)
    assert versions(api) == [1]


def test_put_fallback(api: AdminApi, hero: dict[str, Any]) -> None:
    fallback = {"content": banner("All offers", "#000000"), "target_url": "https://x.example/"}
    response = api.put(f"{HERO}/fallback", json=fallback)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    stored = current(api)
    assert stored["fallback"]["target_url"] == "https://x.example/"
    assert stored["fallback"]["content"]["background"] == "#000000"
    assert stored["variants"] == hero["variants"]


def test_conditions_round_trip_with_their_json_names(api: AdminApi, hero: dict[str, Any]) -> None:
    when = {
        "all": [
            {"not": {"segment": "churned"}},
            {"attr": "country", "in": ["NL"]},
            {"time": {"tz": "Europe/Amsterdam", "from": "2026-12-01T00:00:00+01:00"}},
        ]
    }
    assert api.post(f"{HERO}/variants", json=variant("x", when)).status_code == 201
    # a later edit of another part re-validates the stored block from its JSON form
    assert api.delete(f"{HERO}/variants/a").status_code == 204
    stored = api.get(f"{HERO}/variants/x").get_json()["when"]
    assert stored["all"][0] == {"not": {"segment": "churned"}}
    assert stored["all"][1] == {"attr": "country", "in": ["NL"]}
    assert stored["all"][2]["time"]["from"].startswith("2026-12-01T00:00:00")


# not found


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/campaigns/nope"),
        ("DELETE", "/campaigns/nope"),
        ("GET", "/campaigns/nope/blocks"),
        ("GET", "/campaigns/nope/blocks/hero"),
        ("GET", "/campaigns/daily/blocks/nope"),
        ("DELETE", "/campaigns/daily/blocks/nope"),
        ("GET", "/campaigns/daily/blocks/nope/versions"),
        ("GET", "/campaigns/nope/blocks/hero/versions"),
        ("GET", "/campaigns/daily/blocks/nope/versions/1"),
        ("GET", "/campaigns/daily/blocks/nope/variants"),
        ("GET", f"{HERO}/variants/nope"),
        ("DELETE", f"{HERO}/variants/nope"),
        ("GET", "/no-such-route"),
    ],
)
def test_unknown_things_are_not_found(
    api: AdminApi, hero: dict[str, Any], method: str, path: str
) -> None:
    body = problem(api.request(method, path), 404)
    assert body["title"] in ("Not found", "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "PUT",
            "/campaigns/daily/blocks/nope/fallback",
            {"content": banner(), "target_url": "https://x.y"},
        ),
        ("PUT", "/campaigns/daily/blocks/nope/variants/a", variant("a")),
        ("POST", "/campaigns/daily/blocks/nope/variants", variant("a")),
        ("POST", "/campaigns/nope/blocks/hero/variants", variant("a")),
    ],
)
def test_writing_parts_of_an_unknown_block_is_not_found(
    api: AdminApi,
    hero: dict[str, Any],
    redis_client: redis.Redis,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    before = redis_contents(redis_client)
    problem(api.request(method, path, json=body), 404)
    assert redis_contents(redis_client) == before


def test_wrong_method_is_a_problem_with_allow(api: AdminApi, hero: dict[str, Any]) -> None:
    response = api.request("PATCH", HERO, json={})
    problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}


# body ids


@pytest.mark.parametrize(
    ("path", "body", "url_id"),
    [
        ("/campaigns/daily", {"id": "other"}, "daily"),
        (HERO, block("other"), "hero"),
        (f"{HERO}/variants/a", variant("b"), "a"),
    ],
)
def test_body_id_differing_from_the_url_is_refused(
    api: AdminApi, hero: dict[str, Any], path: str, body: dict[str, Any], url_id: str
) -> None:
    before = current(api)
    response = api.put(path, json=body)
    found = problem(response, 422)
    assert found["errors"] == [
        {
            "pointer": "/id",
            "field": "id",
            "detail": f"must be {url_id!r} (as in the URL) or omitted",
        }
    ]
    assert current(api) == before
    assert api.get("/campaigns/daily").get_json()["id"] == "daily"
    problem(api.get("/campaigns/other"), 404)
    problem(api.get("/campaigns/daily/blocks/other"), 404)


def test_an_invalid_id_in_the_url_points_at_id(api: AdminApi, campaign: dict[str, Any]) -> None:
    document = block()
    del document["id"]
    assert [
        p for p, _ in error_pointers(api.put("/campaigns/daily/blocks/Bad!", json=document))
    ] == ["/id"]
    problem(api.get("/campaigns/daily/blocks/Bad!"), 404)


# validation problems


def _with(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at ``path`` replaced."""
    document = copy.deepcopy(document)
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


def _bad_blocks() -> list[tuple[dict[str, Any], str]]:
    """Invalid block documents and the pointer of their one problem."""
    targeted = {"all": [{"attr": "tier", "eq": "gold"}, {"score": "travel", "gte": 0.5}]}
    cases: list[tuple[dict[str, Any], str]] = [
        (
            _with(
                block(variants=[variant("a", targeted)]),
                ("variants", 0, "when", "all", 1),
                {"score": 5, "gte": 0.5},
            ),
            "/variants/0/when/all/1/score",
        ),
        (
            _with(
                block(variants=[variant("a", targeted)]),
                ("variants", 0, "when", "all", 1),
                {"score": ""},
            ),
            "/variants/0/when/all/1/score",
        ),
        (
            _with(
                block(variants=[variant("a", targeted)]),
                ("variants", 0, "when", "all", 1),
                {"travel": 1},
            ),
            "/variants/0/when/all/1",
        ),
        (
            block(variants=[variant("a", {"not": {"time": {"tz": "Mars/Olympus"}}})]),
            "/variants/0/when/not/time/tz",
        ),
        (
            block(variants=[variant("a", {"any": [{"device": ["fridge"]}]})]),
            "/variants/0/when/any/0/device/0",
        ),
        (
            _with(
                block(variants=[variant("a")]),
                ("variants", 0, "content", "lines", 0, "color"),
                "red",
            ),
            "/variants/0/content/lines/0/color",
        ),
        (
            _with(
                block(variants=[variant("a")]),
                ("variants", 0, "content", "lines", 0, "font_size"),
                2,
            ),
            "/variants/0/content/lines/0/font_size",
        ),
        (
            block(variants=[variant("a"), variant("b", target_url="ftp://files.example/")]),
            "/variants/1/target_url",
        ),
        (block(variants=[variant("a"), variant("b", priority=5000)]), "/variants/1/priority"),
        (_with(block(), ("fallback", "content", "type"), "hologram"), "/fallback/content"),
        (_with(block(), ("fallback",), {"content": banner()}), "/fallback/target_url"),
        (_with(block(), ("width",), 0), "/width"),
        (_with(block(), ("colour",), "#FFFFFF"), "/colour"),
        ({k: v for k, v in block().items() if k != "fallback"}, "/fallback"),
    ]
    return cases


@pytest.mark.parametrize(("document", "pointer"), _bad_blocks())
def test_invalid_block_points_at_the_field(
    api: AdminApi, hero: dict[str, Any], document: dict[str, Any], pointer: str
) -> None:
    response = api.put(HERO, json=document)
    body = problem(response, 422)
    assert body["title"] == "Invalid input"
    assert body["type"] == "https://blanco.dev/problems/invalid-input"
    assert body["detail"] == "the request body has 1 problem"
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["pointer"] == pointer
    assert error["field"] == pointer.strip("/").replace("/", ".")
    assert error["detail"]
    # a bad update loses nothing already stored
    assert current(api) == hero
    assert versions(api) == [1]


@pytest.mark.parametrize(("document", "pointer"), _bad_blocks()[:3])
def test_invalid_new_block_is_not_created(
    api: AdminApi, campaign: dict[str, Any], document: dict[str, Any], pointer: str
) -> None:
    assert [p for p, _ in error_pointers(api.post("/campaigns/daily/blocks", json=document))] == [
        pointer
    ]
    problem(api.get(HERO), 404)
    assert api.get("/campaigns/daily/blocks").get_json() == []


def test_a_value_no_union_member_accepts_points_at_the_value(
    api: AdminApi, hero: dict[str, Any]
) -> None:
    when = {"any": [{"segment": "vip"}, {"attr": "country", "eq": {"code": "NL"}}]}
    response = api.put(HERO, json=block(variants=[variant("a", when)]))
    assert set(error_pointers(response)) == {
        ("/variants/0/when/any/1/eq", "variants.0.when.any.1.eq")
    }
    assert current(api) == hero


def test_an_unknown_key_in_a_condition_points_at_the_key(
    api: AdminApi, hero: dict[str, Any]
) -> None:
    when = {"not": {"attr": "country", "eq": "NL", "bogus": 1}}
    response = api.put(HERO, json=block(variants=[variant("a", when)]))
    assert error_pointers(response) == [("/variants/0/when/not/bogus", "variants.0.when.not.bogus")]


def test_every_problem_is_reported(api: AdminApi, hero: dict[str, Any]) -> None:
    document = block(variants=[variant("a", target_url="mailto:x@y.z")])
    document["width"] = -1
    document["variants"][0]["content"]["lines"][0]["color"] = "blue"
    response = api.put(HERO, json=document)
    body = problem(response, 422)
    assert body["detail"] == "the request body has 3 problems"
    assert sorted(error_pointers(response)) == [
        ("/variants/0/content/lines/0/color", "variants.0.content.lines.0.color"),
        ("/variants/0/target_url", "variants.0.target_url"),
        ("/width", "width"),
    ]
    assert current(api) == hero


def test_block_level_rule_points_at_the_document(api: AdminApi, hero: dict[str, Any]) -> None:
    response = api.put(HERO, json=block(variants=[variant("a"), variant("a")]))
    body = problem(response, 422)
    assert body["errors"][0]["pointer"] == ""
    assert "appears twice" in body["errors"][0]["detail"]
    assert current(api) == hero


def test_invalid_variant_points_inside_the_variant(api: AdminApi, hero: dict[str, Any]) -> None:
    bad = variant("a", {"all": [{"segment": "vip"}, {"score": "travel"}]})
    bad["content"]["lines"][0]["color"] = "#12"
    response = api.put(f"{HERO}/variants/a", json=bad)
    assert sorted(error_pointers(response)) == [
        ("/content/lines/0/color", "content.lines.0.color"),
        ("/when/all/1/score", "when.all.1.score"),
    ]
    problem(api.post(f"{HERO}/variants", json={**bad, "id": "new"}), 422)
    assert current(api) == hero


def test_invalid_fallback_points_inside_the_fallback(api: AdminApi, hero: dict[str, Any]) -> None:
    bad = {"content": banner(background="#GGGGGG"), "target_url": "javascript:alert(1)"}
    response = api.put(f"{HERO}/fallback", json=bad)
    assert sorted(error_pointers(response)) == [
        ("/content/background", "content.background"),
        ("/target_url", "target_url"),
    ]
    assert current(api) == hero


def test_a_change_that_breaks_the_block_is_refused(api: AdminApi, campaign: dict[str, Any]) -> None:
    full = [variant(f"v{n}") for n in range(100)]
    assert api.put(HERO, json=block(variants=full)).status_code == 201
    response = api.post(f"{HERO}/variants", json=variant("one-too-many"))
    body = problem(response, 422)
    assert body["detail"] == "the block has 1 problem"
    assert [e["pointer"] for e in body["errors"]] == ["/variants"]
    assert len(current(api)["variants"]) == 100
    assert versions(api) == [1]


def test_body_that_is_not_json_is_refused(api: AdminApi, hero: dict[str, Any]) -> None:
    broken = api.put(HERO, data='{"id": "hero",', content_type="application/json")
    assert problem(broken, 422)["detail"] == "the request body is not valid JSON"
    plain = api.put(HERO, data="id=hero", content_type="text/plain")
    problem(plain, 415)
    not_an_object = api.put(HERO, json=["hero"])
    assert [p for p, _ in error_pointers(not_an_object)] == [""]
    assert current(api) == hero


def test_invalid_campaign_points_at_the_field(api: AdminApi, campaign: dict[str, Any]) -> None:
    assert error_pointers(api.put("/campaigns/daily", json={"status": "stopped"})) == [
        ("/status", "status")
    ]
    assert error_pointers(api.post("/campaigns", json={"id": "Has Spaces"})) == [("/id", "id")]
    assert error_pointers(api.post("/campaigns", json={"name": "no id"})) == [("/id", "id")]
    assert api.get("/campaigns/daily").get_json() == campaign
    assert [c["id"] for c in api.get("/campaigns").get_json()] == ["daily"]


def test_problem_details_do_not_leak_internals(
    api: AdminApi, hero: dict[str, Any], redis_client: redis.Redis
) -> None:
    body = problem(api.put(HERO, json=block(variants=[variant("a", {"bogus": 1})])), 422)
    text = str(body)
    assert "Traceback" not in text
    assert "pydantic" not in text
    assert "blanco:" not in text  # no Redis key names


def test_a_block_side_is_at_most_2400_px_and_its_area_at_most_the_setting(
    api: AdminApi, campaign: dict[str, Any]
) -> None:
    wide = api.put(HERO, json={**block(), "width": 2400, "height": 100})
    assert wide.status_code in (200, 201)
    assert wide.get_json()["width"] == 2400
    for side in ("width", "height"):
        too_long = api.put(HERO, json={**block(), "width": 100, "height": 100, side: 2401})
        assert [pointer for pointer, _ in error_pointers(too_long)] == [f"/{side}"]
    # both at 2400 is 5,760,000 pixels: over BLANCO_MAX_IMAGE_PIXELS (default 4,000,000)
    square = api.put(HERO, json={**block(), "width": 2400, "height": 2400})
    assert problem(square, 422)
    assert current(api)["width"] == 2400
    assert current(api)["height"] == 100
