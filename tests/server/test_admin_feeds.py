"""Admin API v1: content feeds. Items one by one (PUT, GET, DELETE), the listings with the
feed's version, problem details for bad items, bulk upserts as JSON Lines and CSV (bad rows
reported by line, good ones stored, re-imports idempotent) and the scope the routes need."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from server.admin_api import api as admin_api
from server.api_operations import Operation
from server.services import Services
from tests.factories import AdminApi, csv_file, error_pointers, jsonl, problem, redis_contents
from tests.newsletter_fixtures import item, item_document

NDJSON = "application/x-ndjson"
CSV = "text/csv"
TRIPS = "/feeds/trips"
FEED_KEYS = "blanco:cfg:{f:*"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def ingest(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with an ingest-only key."""
    return AdminApi(client, ingest_headers)


def errors_of(report: dict[str, Any]) -> list[tuple[int, str]]:
    """(line, pointer) of each reported bad row."""
    return [(e["line"], e["pointer"]) for e in report["errors"]]


def version(redis_client: redis.Redis, feed_id: str = "trips") -> int:
    """The feed's version counter as stored."""
    return int(redis_client.get(keys.feed_version(feed_id)) or 0)


def item_ids(api: AdminApi, feed: str = TRIPS) -> list[str]:
    """The ids of the feed's items, as the listing answers them."""
    response = api.get(f"{feed}/items")
    assert response.status_code == 200, response.get_data(as_text=True)
    return [i["id"] for i in response.get_json()["items"]]


AMSTERDAM: dict[str, Any] = {
    "title": "Amsterdam by canal",
    "text": "Three nights, breakfast included",
    "url": "https://shop.example/items/amsterdam?utm_source=blanco",
    "image_asset": "sha256:" + "ab" * 32,
    "category": "city_trip",
    "tags": ["city", "canals"],
    "price": 199.0,
    "old_price": 249.5,
    "badge": "-20%",
    "cta": "Book now",
    "valid_from": "2026-11-20T00:00:00+01:00",
    "valid_until": "2026-12-01T00:00:00+01:00",
    "priority": 2.5,
}
WHEN: dict[str, Any] = {
    "all": [
        {"not": {"segment": "vip"}},
        {"attr": "city", "in": ["Utrecht", "Delft"]},
        {"time": {"from": "2026-11-20T00:00:00+01:00", "tz": "Europe/Amsterdam"}},
    ]
}
"""Targeting that uses every field whose JSON name differs from its Python name."""


# one item at a time


def test_put_then_get_an_item(api: AdminApi, services: Services) -> None:
    response = api.put(f"{TRIPS}/items/amsterdam", json=AMSTERDAM)
    assert response.status_code == 200
    assert response.get_json() == {"id": "amsterdam", **AMSTERDAM, "available": True}
    assert api.get(f"{TRIPS}/items/amsterdam").get_json() == response.get_json()
    stored = services.feeds.get_item("trips", "amsterdam")
    assert stored is not None
    assert (stored.price, stored.old_price, stored.tags) == (199.0, 249.5, ["city", "canals"])
    assert stored.valid_from is not None
    assert stored.valid_from.isoformat() == "2026-11-20T00:00:00+01:00"
    assert services.feeds.load("trips").items == {"amsterdam": stored}


def test_put_replaces_the_whole_item(api: AdminApi) -> None:
    api.put(f"{TRIPS}/items/amsterdam", json=AMSTERDAM)
    replacement = {"id": "amsterdam", "title": "Amsterdam", "url": "https://shop.example/ams"}
    response = api.put(f"{TRIPS}/items/amsterdam", json=replacement)
    assert response.status_code == 200
    expected = {
        **replacement,
        "text": "",
        "tags": [],
        "badge": "",
        "cta": "",
        "priority": 1.0,
        "available": True,
    }
    assert response.get_json() == expected
    assert api.get(f"{TRIPS}/items/amsterdam").get_json() == expected
    assert item_ids(api) == ["amsterdam"]


def test_targeting_is_stored_so_that_open_time_can_read_it(
    api: AdminApi, services: Services
) -> None:
    response = api.put(f"{TRIPS}/items/local", json=item_document("local", when=WHEN))
    assert response.status_code == 200
    expected = item("local", when=WHEN)
    assert services.feeds.load("trips").items == {"local": expected}
    assert services.feeds.get_item("trips", "local") == expected
    assert api.get(f"{TRIPS}/items/local").status_code == 200
    assert api.get(f"{TRIPS}/items").status_code == 200


def test_targeting_is_answered_with_the_names_it_was_sent_with(api: AdminApi) -> None:
    """The answers use the JSON names (``not``, ``in``, ``from``), so a client can send back
    what it read."""
    put = api.put(f"{TRIPS}/items/local", json=item_document("local", when=WHEN))
    assert put.get_json()["when"] == WHEN
    got = api.get(f"{TRIPS}/items/local").get_json()
    assert got["when"] == WHEN
    assert api.get(f"{TRIPS}/items").get_json()["items"][0]["when"] == WHEN
    assert api.put(f"{TRIPS}/items/local", json=got).status_code == 200


# listings and versions


def test_listings_and_the_version_moving_on_every_change(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    assert api.get("/feeds").get_json() == {"feeds": []}
    api.put(f"{TRIPS}/items/paris", json=item_document("paris", "city_trip"))
    api.put(f"{TRIPS}/items/crete", json=item_document("crete", "beach"))
    api.put("/feeds/offers/items/spa", json=item_document("spa"))
    assert api.get("/feeds").get_json() == {"feeds": ["offers", "trips"]}

    listed = api.get(f"{TRIPS}/items").get_json()
    assert listed == {
        "feed_id": "trips",
        "version": 2,
        "items": [item_document("crete", "beach"), item_document("paris", "city_trip")],
    }
    assert version(redis_client) == 2

    api.put(f"{TRIPS}/items/paris", json=item_document("paris", "city_trip", priority=3))
    assert api.get(f"{TRIPS}/items").get_json()["version"] == 3
    assert api.get(f"{TRIPS}/items/paris").get_json()["priority"] == 3.0

    assert api.delete(f"{TRIPS}/items/paris").status_code == 204
    answer = api.get(f"{TRIPS}/items").get_json()
    assert (answer["version"], [i["id"] for i in answer["items"]]) == (4, ["crete"])
    problem(api.get(f"{TRIPS}/items/paris"), 404)
    assert api.get("/feeds/offers/items").get_json()["version"] == 1


def test_a_feed_stays_listed_until_it_is_deleted(api: AdminApi, redis_client: redis.Redis) -> None:
    api.put(f"{TRIPS}/items/paris", json=item_document("paris"))
    api.put("/feeds/offers/items/spa", json=item_document("spa"))
    assert api.delete(f"{TRIPS}/items/paris").status_code == 204
    assert api.get("/feeds").get_json() == {"feeds": ["offers", "trips"]}
    assert api.get(f"{TRIPS}/items").get_json() == {"feed_id": "trips", "version": 2, "items": []}

    api.put(f"{TRIPS}/items/rome", json=item_document("rome"))
    assert api.delete(TRIPS).status_code == 204
    assert api.get("/feeds").get_json() == {"feeds": ["offers"]}
    problem(api.get(f"{TRIPS}/items"), 404)
    problem(api.get(f"{TRIPS}/items/rome"), 404)
    # the version keeps counting, so that open-time caches notice the feed is gone
    assert version(redis_client) == 4
    assert redis_client.hlen(keys.feed_items("trips")) == 0
    assert item_ids(api, "/feeds/offers") == ["spa"]


def test_unknown_feeds_and_items_are_not_found(api: AdminApi) -> None:
    api.put(f"{TRIPS}/items/paris", json=item_document("paris"))
    assert "no feed 'nope'" in problem(api.get("/feeds/nope/items"), 404)["detail"]
    missing = problem(api.get(f"{TRIPS}/items/rome"), 404)
    assert missing["detail"] == "no item 'rome' in feed 'trips'"
    problem(api.get("/feeds/nope/items/paris"), 404)
    problem(api.delete(f"{TRIPS}/items/rome"), 404)
    problem(api.delete("/feeds/nope/items/paris"), 404)
    problem(api.delete("/feeds/nope"), 404)
    assert item_ids(api) == ["paris"]


def test_a_refused_delete_changes_nothing(api: AdminApi, redis_client: redis.Redis) -> None:
    api.put(f"{TRIPS}/items/paris", json=item_document("paris"))
    state = redis_contents(redis_client, FEED_KEYS)
    problem(api.delete(f"{TRIPS}/items/rome"), 404)
    problem(api.delete("/feeds/nope/items/paris"), 404)
    problem(api.delete("/feeds/nope"), 404)
    # no version moves (open-time caches would re-read the feed) and no key appears
    assert redis_contents(redis_client, FEED_KEYS) == state


# bad items


def _with(**changes: Any) -> dict[str, Any]:
    return {**AMSTERDAM, **changes}


@pytest.mark.parametrize(
    ("body", "pointers", "detail"),
    [
        (_with(url="ftp://shop.example/a"), [("/url", "url")], "http(s)"),
        (_with(url="/items/amsterdam"), [("/url", "url")], "http(s)"),
        (
            _with(valid_until="2026-11-19T00:00:00+01:00"),
            [("", "")],  # a rule about the whole item points at the document
            "valid_until must be after valid_from",
        ),
        (
            _with(valid_until="2026-11-20T00:00:00+01:00"),
            [("", "")],
            "valid_until must be after valid_from",
        ),
        (_with(valid_from="2026-11-20T00:00:00"), [("/valid_from", "valid_from")], "time zone"),
        (_with(valid_until="2026-12-01T00:00:00"), [("/valid_until", "valid_until")], "zone"),
        (_with(colour="red"), [("/colour", "colour")], "Extra inputs"),
        (_with(id="rome"), [("/id", "id")], "as in the URL"),
        (_with(image_asset="sha256:abc"), [("/image_asset", "image_asset")], "pattern"),
        (_with(price=-1), [("/price", "price")], "greater than or equal to 0"),
        (_with(tags=["city", ""]), [("/tags/1", "tags.1")], "at least 1"),
        (_with(category="City Trips"), [("/category", "category")], "pattern"),
        (_with(title=""), [("/title", "title")], "at least 1"),
        (_with(when={"score": "travel"}), [("/when/score", "when.score")], "needs an operator"),
        (_with(when={"colour": "red"}), [("/when", "when")], "a condition needs one of"),
    ],
)
def test_a_bad_item_is_refused_with_pointers_and_nothing_is_stored(
    api: AdminApi,
    redis_client: redis.Redis,
    body: dict[str, Any],
    pointers: list[tuple[str, str]] | None,
    detail: str | None,
) -> None:
    response = api.put(f"{TRIPS}/items/amsterdam", json=body)
    body_of_problem = problem(response, 422)
    if pointers is not None:
        assert error_pointers(response) == pointers
    if detail is not None:
        assert detail in body_of_problem["errors"][0]["detail"]
    assert redis_contents(redis_client, FEED_KEYS) == {}
    assert api.get("/feeds").get_json() == {"feeds": []}


def test_item_and_feed_ids_in_the_url_are_checked(api: AdminApi, redis_client: redis.Redis) -> None:
    for feed in ("Trips", "city%20trips", "-trips", "t" * 65):
        response = api.put(f"/feeds/{feed}/items/amsterdam", json=AMSTERDAM)
        assert error_pointers(response) == [("/feed_id", "feed_id")], feed
    for item_id in ("-amsterdam", "ams%20terdam", "a" * 129):
        response = api.put(f"{TRIPS}/items/{item_id}", json=AMSTERDAM)
        assert error_pointers(response) == [("/id", "id")], item_id
    assert redis_contents(redis_client, FEED_KEYS) == {}
    assert redis_client.smembers(keys.FEED_INDEX) == set()
    # the longest ids that are allowed
    assert api.put(f"/feeds/{'t' * 64}/items/{'a' * 128}", json=AMSTERDAM).status_code == 200


def test_a_body_that_is_not_json_is_refused(api: AdminApi) -> None:
    problem(api.put(f"{TRIPS}/items/a", data="{", content_type="application/json"), 422)
    problem(api.put(f"{TRIPS}/items/a", data="title=A", content_type="text/plain"), 415)
    problem(api.put(f"{TRIPS}/items/a", json=["not", "an", "object"]), 422)
    assert api.get("/feeds").get_json() == {"feeds": []}


# bulk


def test_bulk_jsonl_stores_good_lines_and_reports_bad_ones(
    api: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    body = jsonl(
        item_document("paris", "city_trip"),
        {**item_document("rome"), "url": "mailto:rome@shop.example"},
        "{not json",
        "",
        {**item_document("lyon"), "valid_from": "2026-11-20T00:00:00"},
        {**item_document("nice"), "colour": "blue"},
        {
            **item_document("crete", "beach"),
            "valid_from": "2026-12-01T00:00:00Z",
            "valid_until": "2026-11-01T00:00:00Z",
        },
        {"title": "no id", "url": "https://shop.example/x"},
        item_document("algarve", "beach", tags=["sun"], price=99.5),
    )
    response = api.post(f"{TRIPS}/items/bulk", data=body, content_type=NDJSON)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (8, 2, 6)
    assert errors_of(report) == [
        (2, "/url"),
        (3, ""),
        (5, "/valid_from"),
        (6, "/colour"),
        (7, ""),
        (8, "/id"),
    ]
    assert report["errors"][1]["detail"] == "not valid JSON"
    assert report["errors"][4]["detail"] == "valid_until must be after valid_from"
    assert sorted(services.feeds.load("trips").items) == ["algarve", "paris"]
    algarve = api.get(f"{TRIPS}/items/algarve").get_json()
    assert algarve == item_document("algarve", "beach", tags=["sun"], price=99.5)
    assert version(redis_client) > 0
    assert api.get("/feeds").get_json() == {"feeds": ["trips"]}


def test_bulk_csv_reads_tags_and_numbers_and_reports_lines(
    api: AdminApi, services: Services
) -> None:
    header = ["id", "title", "url", "category", "tags", "price", "priority", "text", "valid_from"]
    data = csv_file(
        header,
        ["paris", "Paris", "https://shop.example/paris", "city_trip", "city; food ;", "149.50",
         "2", "Three nights", "2026-11-20T00:00:00+01:00"],
        ["rome", "Rome", "https://shop.example/rome", "culture", "", "cheap", "", "", ""],
        [],
        ["lyon", "Lyon", "https://shop.example/lyon", "", "", "", "", "two\nlines", ""],
        ["nice", "Nice", "not a url", "", "", "", "", "", ""],
        ["bern", "Bern", "https://shop.example/bern"],
        ["oslo", "Oslo", "https://shop.example/oslo", "", "", "", "", "", "2026-11-20T00:00"],
        ["", "Nameless", "https://shop.example/x", "", "", "", "", "", ""],
        ["zermatt", "Zermatt", "https://shop.example/zermatt", "ski", "", "0", "1000", "", ""],
    )  # fmt: skip
    response = api.post(f"{TRIPS}/items/bulk", data=data, content_type=CSV)
    assert response.status_code == 200
    report = response.get_json()
    # 1 header, 2 paris, 3 rome, 4 blank, 5-6 lyon (a quoted cell spans two lines), 7 nice,
    # 8 bern, 9 oslo, 10 nameless, 11 zermatt
    assert errors_of(report) == [
        (3, "/price"),
        (7, "/url"),
        (8, ""),
        (9, "/valid_from"),
        (10, "/id"),
    ]
    assert report["errors"][2]["detail"] == "expected 9 cells, found 3"
    assert (report["received"], report["stored"], report["rejected"]) == (8, 3, 5)

    items = services.feeds.load("trips").items
    assert sorted(items) == ["lyon", "paris", "zermatt"]
    paris = items["paris"]
    assert (paris.tags, paris.price, paris.priority, paris.category) == (
        ["city", "food"],
        149.5,
        2.0,
        "city_trip",
    )
    assert paris.valid_from is not None
    assert paris.valid_from.isoformat() == "2026-11-20T00:00:00+01:00"
    assert (items["lyon"].text, items["lyon"].tags, items["lyon"].category) == (
        "two\nlines",
        [],
        None,
    )
    assert (items["zermatt"].price, items["zermatt"].priority) == (0.0, 1000.0)
    listed = api.get(f"{TRIPS}/items/paris").get_json()
    assert (listed["price"], listed["priority"], listed["tags"]) == (149.5, 2.0, ["city", "food"])


@pytest.mark.parametrize(
    ("header", "errors"),
    [
        (["id", "title", "url", "colour"], [(1, "/colour")]),
        (["id", "title", "url", "when"], [(1, "/when")]),
        (["id", "title"], [(1, "/url")]),
        (["id", "title", "url", "title"], [(1, "/title")]),
    ],
)
def test_a_bad_csv_header_stores_nothing(
    api: AdminApi, redis_client: redis.Redis, header: list[str], errors: list[tuple[int, str]]
) -> None:
    row = ["paris", "Paris", "https://shop.example/paris", "x"][: len(header)]
    report = api.post(f"{TRIPS}/items/bulk", data=csv_file(header, row), content_type=CSV)
    assert errors_of(report.get_json()) == errors
    assert redis_contents(redis_client, FEED_KEYS) == {}


def test_bulk_refuses_other_media_types_and_bad_feed_ids(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    body = jsonl(item_document("paris"))
    for media in ("application/json", "text/plain"):
        detail = problem(api.post(f"{TRIPS}/items/bulk", data=body, content_type=media), 415)
        assert "text/csv" in detail["detail"]
    response = api.post("/feeds/Trips/items/bulk", data=body, content_type=NDJSON)
    assert error_pointers(response) == [("/feed_id", "feed_id")]
    assert redis_contents(redis_client, FEED_KEYS) == {}


def test_reimporting_the_same_files_leaves_the_items_identical(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    lines = jsonl(
        item_document("paris", "city_trip", tags=["city"], price=149.5),
        item_document("crete", "beach", valid_until="2026-12-01T00:00:00+01:00"),
        item_document("vip", when={"not": {"segment": "vip"}}),
    )
    table = csv_file(
        ["id", "title", "url", "tags", "price", "valid_from"],
        ["rome", "Rome", "https://shop.example/rome", "culture;food", "89", ""],
        ["oslo", "Oslo", "https://shop.example/oslo", "", "", "2026-11-20T00:00:00Z"],
    )

    def import_both() -> list[dict[str, Any]]:
        return [
            api.post(f"{TRIPS}/items/bulk", data=lines, content_type=NDJSON).get_json(),
            api.post(f"{TRIPS}/items/bulk", data=table, content_type=CSV).get_json(),
        ]

    reports = import_both()
    assert [r["stored"] for r in reports] == [3, 2]
    assert all(r["rejected"] == 0 for r in reports)
    state = redis_contents(redis_client, FEED_KEYS)
    index = redis_client.smembers(keys.FEED_INDEX)
    first_version = version(redis_client)
    assert first_version > 0
    listed = api.get(f"{TRIPS}/items").get_json()["items"]

    assert import_both() == reports
    again = redis_contents(redis_client, FEED_KEYS)
    version_key = keys.feed_version("trips")
    assert {k: v for k, v in again.items() if k != version_key} == {
        k: v for k, v in state.items() if k != version_key
    }
    assert redis_client.smembers(keys.FEED_INDEX) == index
    assert api.get(f"{TRIPS}/items").get_json()["items"] == listed
    # the version still moves (it counts writes, so caches re-read), it never goes back
    assert version(redis_client) > first_version


# scopes


FEED_OPERATIONS = [op for op in admin_api.operations if op.tag == "content feeds"]
PATH_VALUES = {"feed_id": "trips", "item_id": "paris"}


def _url(op: Operation) -> str:
    path = op.path
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def _request(caller: AdminApi, op: Operation) -> Any:
    if op.method == "PUT":
        return caller.request(op.method, _url(op), json=item_document("paris"))
    if op.method == "POST":
        return caller.request(
            op.method, _url(op), data=jsonl(item_document("paris")), content_type=NDJSON
        )
    return caller.request(op.method, _url(op))


def test_every_feed_operation_is_declared_for_admins() -> None:
    assert {(op.method, op.path) for op in FEED_OPERATIONS} == {
        ("GET", "/feeds"),
        ("GET", "/feeds/{feed_id}/items"),
        ("PUT", "/feeds/{feed_id}/items/{item_id}"),
        ("GET", "/feeds/{feed_id}/items/{item_id}"),
        ("DELETE", "/feeds/{feed_id}/items/{item_id}"),
        ("DELETE", "/feeds/{feed_id}"),
        ("POST", "/feeds/{feed_id}/items/bulk"),
    }
    assert {op.scope for op in FEED_OPERATIONS} == {"admin"}


@pytest.mark.parametrize("op", FEED_OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_an_ingest_key_is_refused_and_changes_nothing(
    api: AdminApi,
    ingest: AdminApi,
    client: FlaskClient,
    redis_client: redis.Redis,
    op: Operation,
) -> None:
    api.put(f"{TRIPS}/items/paris", json=item_document("paris", "city_trip"))
    state = redis_contents(redis_client, FEED_KEYS)
    body = problem(_request(ingest, op), 403)
    assert "'admin'" in body["detail"]
    problem(_request(AdminApi(client, {}), op), 401)
    assert redis_contents(redis_client, FEED_KEYS) == state
    assert _request(api, op).status_code in (200, 204)
