"""Live sources end to end: pushed by API, shown by the very next open, and falling back once
they are older than their freshness limit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from models.measurement.event_stream import campaign_event_entries
from models.storage import keys
from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    FakeClock,
    banner,
    corner_color,
    error_pointers,
    hex_rgb,
    landing,
    problem,
    redis_contents,
    store_block,
    store_recipient,
    variant,
)
from tests.newsletter_fixtures import item, slot_url, store_newsletter, store_subscriber

FEW = "#CC0000"
MANY = "#00AA00"


@pytest.fixture
def ingest(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with the data team's ingest-only key."""
    return AdminApi(client, ingest_headers)


@pytest.fixture
def admin(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def seats(seats_left: Any = 12, max_age: int = 600, **more: Any) -> dict[str, Any]:
    """A push body for the ``flights`` source."""
    return {"values": {"seats_left": seats_left, **more}, "max_age_seconds": max_age}


def seats_variant(variant_id: str, when: dict[str, Any], background: str) -> dict[str, Any]:
    """A variant that shows the seats left and needs the flights source to be fresh."""
    return {
        **variant(variant_id, when, priority=10),
        "content": banner("Only {{ live.flights.seats_left }} seats left", background),
        "requires_live": ["flights"],
    }


@pytest.fixture
def banner_block(services: Services) -> Services:
    """A seats-left banner: red for five seats or fewer, green above, generic grey fallback."""
    store_block(
        services,
        [
            seats_variant("few", {"live": "flights.seats_left", "lte": 5}, FEW),
            seats_variant("many", {"live": "flights.seats_left", "gt": 5}, MANY),
        ],
    )
    store_recipient(services, "anna")
    return services


def open_image(client: FlaskClient, services: Services, recipient_id: str = "anna") -> TestResponse:
    return client.get("/i/daily/hero.png", query_string={"r": services.signer.sign(recipient_id)})


def render_keys(redis_client: redis.Redis) -> int:
    return len(list(redis_client.scan_iter(match=keys.render_cache("*"))))


# pushing and reading


def test_push_read_list_and_delete(
    ingest: AdminApi, admin: AdminApi, services: Services, clock: FakeClock
) -> None:
    response = ingest.put("/live/flights", json=seats(12, price=89.0, notice="Gate B12"))
    assert response.status_code == 200, response.get_data(as_text=True)
    pushed = response.get_json()
    assert dt.datetime.fromisoformat(pushed.pop("updated_at")) == clock.now
    assert pushed == {
        "source": "flights",
        "values": {"seats_left": 12, "price": 89.0, "notice": "Gate B12"},
        "max_age_seconds": 600,
        "fresh": True,
        "age_seconds": 0.0,
    }
    clock.advance(seconds=601)
    read = ingest.get("/live/flights").get_json()
    assert (read["fresh"], read["age_seconds"]) == (False, 601.0)
    assert [s["source"] for s in ingest.get("/live").get_json()] == ["flights"]
    problem(ingest.delete("/live/flights"), 403)  # removing a source is an admin's job
    assert admin.delete("/live/flights").status_code == 204
    problem(admin.delete("/live/flights"), 404)
    problem(ingest.get("/live/flights"), 404)
    assert ingest.get("/live").get_json() == []


def test_a_push_replaces_every_value(ingest: AdminApi) -> None:
    ingest.put("/live/flights", json=seats(12, notice="Gate B12"))
    ingest.put("/live/flights", json=seats(11))
    assert ingest.get("/live/flights").get_json()["values"] == {"seats_left": 11}


def test_the_body_may_name_the_source_of_the_url(ingest: AdminApi) -> None:
    assert ingest.put("/live/flights", json={**seats(), "source": "flights"}).status_code == 200
    assert error_pointers(ingest.put("/live/flights", json={**seats(), "source": "stock"})) == [
        ("/source", "source")
    ]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/live/flights", seats(**{f"v{n}": n for n in range(100)}), [("/values", "values")]),
        ("/live/flights", seats({"left": 12}), [("/values/seats_left", "values.seats_left")]),
        ("/live/flights", seats([12]), [("/values/seats_left", "values.seats_left")]),
        ("/live/flights", seats(max_age=0), [("/max_age_seconds", "max_age_seconds")]),
        ("/live/flights", seats(max_age=-60), [("/max_age_seconds", "max_age_seconds")]),
        ("/live/flights", {"values": {}}, [("/max_age_seconds", "max_age_seconds")]),
        ("/live/Flights", seats(), [("/source", "source")]),
        ("/live/kl-123", seats(), [("/source", "source")]),
        ("/live/flights", {**seats(), "ttl": 5}, [("/ttl", "ttl")]),
    ],
)
def test_bad_pushes_are_refused_and_change_nothing(
    ingest: AdminApi,
    redis_client: redis.Redis,
    path: str,
    body: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    assert ingest.put("/live/flights", json=seats(12)).status_code == 200
    before = redis_contents(redis_client, "blanco:cfg:{live}:*")
    assert error_pointers(ingest.put(path, json=body)) == expected
    assert redis_contents(redis_client, "blanco:cfg:{live}:*") == before


def test_bad_source_names_in_reads_are_refused(ingest: AdminApi, admin: AdminApi) -> None:
    assert error_pointers(ingest.get("/live/Flights")) == [("/source", "source")]
    assert error_pointers(admin.delete("/live/kl-123")) == [("/source", "source")]


def test_ingest_and_admin_keys_may_push_a_channel_key_may_not(
    client: FlaskClient, services: Services, ingest: AdminApi, admin: AdminApi
) -> None:
    _, channel_key = services.api_keys.create("website", ["channel"])
    channel = AdminApi(client, {"Authorization": f"Bearer {channel_key}"})
    problem(channel.put("/live/flights", json=seats()), 403)
    problem(channel.get("/live"), 403)
    problem(client.put("/api/v1/live/flights", json=seats()), 401)
    assert services.live.get("flights") is None
    assert ingest.put("/live/flights", json=seats(12)).status_code == 200
    assert admin.put("/live/flights", json=seats(11)).status_code == 200
    assert services.live.get("flights").values == {"seats_left": 11}  # type: ignore[union-attr]


# at open time


def test_a_push_changes_the_very_next_open(
    client: FlaskClient, ingest: AdminApi, banner_block: Services
) -> None:
    ingest.put("/live/flights", json=seats(12))
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(MANY)
    ingest.put("/live/flights", json=seats(3))
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(FEW)
    ingest.put("/live/flights", json=seats(40))
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(MANY)


def test_the_banner_shows_the_pushed_number_and_caches_per_value(
    client: FlaskClient, ingest: AdminApi, banner_block: Services, redis_client: redis.Redis
) -> None:
    ingest.put("/live/flights", json=seats(12))
    twelve = open_image(client, banner_block)
    again = open_image(client, banner_block)
    assert again.headers["ETag"] == twelve.headers["ETag"]
    assert again.data == twelve.data
    assert render_keys(redis_client) == 1  # the second open was a cache hit
    ingest.put("/live/flights", json=seats(11, notice="unused by the banner"))
    eleven = open_image(client, banner_block)
    assert corner_color(eleven.data) == hex_rgb(MANY)
    assert eleven.headers["ETag"] != twelve.headers["ETag"]
    assert eleven.data != twelve.data  # another number drawn
    assert render_keys(redis_client) == 2
    ingest.put("/live/flights", json=seats(12, notice="still unused"))
    assert open_image(client, banner_block).headers["ETag"] == twelve.headers["ETag"]
    assert render_keys(redis_client) == 2


def test_stale_data_falls_back(
    client: FlaskClient, ingest: AdminApi, banner_block: Services, clock: FakeClock
) -> None:
    ingest.put("/live/flights", json=seats(3, max_age=600))
    clock.advance(seconds=600)
    fresh = open_image(client, banner_block)
    assert corner_color(fresh.data) == hex_rgb(FEW)
    assert "X-Blanco-Fallback" not in fresh.headers
    clock.advance(seconds=1)
    stale = open_image(client, banner_block)
    assert corner_color(stale.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert stale.headers["X-Blanco-Fallback"] == "no variant matched"
    redirect = client.get("/c/daily/hero", query_string={"r": banner_block.signer.sign("anna")})
    assert landing(redirect) == FALLBACK_URL
    ingest.put("/live/flights", json=seats(3, max_age=600))  # a new push is fresh again
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(FEW)


def test_a_stale_source_falls_back_to_the_next_variant(
    client: FlaskClient, ingest: AdminApi, services: Services, clock: FakeClock
) -> None:
    store_block(
        services,
        [
            seats_variant("live", {"live": "flights.seats_left", "gte": 0}, FEW),
            variant("evergreen", priority=1, background=MANY),
        ],
    )
    store_recipient(services, "anna")
    ingest.put("/live/flights", json=seats(3, max_age=60))
    assert corner_color(open_image(client, services).data) == hex_rgb(FEW)
    clock.advance(minutes=2)
    later = open_image(client, services)
    assert corner_color(later.data) == hex_rgb(MANY)
    assert "X-Blanco-Fallback" not in later.headers


def test_a_click_follows_what_the_open_showed_even_after_the_data_went_stale(
    client: FlaskClient, ingest: AdminApi, banner_block: Services, clock: FakeClock
) -> None:
    ingest.put("/live/flights", json=seats(3, max_age=60))
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(FEW)
    clock.advance(hours=1)
    redirect = client.get("/c/daily/hero", query_string={"r": banner_block.signer.sign("anna")})
    assert landing(redirect) == "https://shop.example/few"


def test_a_lock_on_the_first_open_holds_only_while_its_data_is_fresh(
    client: FlaskClient, ingest: AdminApi, services: Services, clock: FakeClock
) -> None:
    store_block(
        services,
        [
            seats_variant("live", {"live": "flights.seats_left", "gte": 0}, FEW),
            variant("evergreen", priority=1, background=MANY),
        ],
        lock_on_first_open=True,
    )
    store_recipient(services, "anna")
    ingest.put("/live/flights", json=seats(3, max_age=60))
    assert corner_color(open_image(client, services).data) == hex_rgb(FEW)
    ingest.put("/live/flights", json=seats(30, max_age=60))
    assert corner_color(open_image(client, services).data) == hex_rgb(FEW)  # locked
    clock.advance(minutes=2)
    assert corner_color(open_image(client, services).data) == hex_rgb(MANY)
    ingest.put("/live/flights", json=seats(3, max_age=60))
    assert corner_color(open_image(client, services).data) == hex_rgb(MANY)  # locked anew


def test_a_deleted_source_falls_back(
    client: FlaskClient, ingest: AdminApi, admin: AdminApi, banner_block: Services
) -> None:
    ingest.put("/live/flights", json=seats(3))
    assert corner_color(open_image(client, banner_block).data) == hex_rgb(FEW)
    admin.delete("/live/flights")
    assert open_image(client, banner_block).headers["X-Blanco-Fallback"] == "no variant matched"


def test_a_live_condition_without_requires_live(
    client: FlaskClient, ingest: AdminApi, services: Services, clock: FakeClock
) -> None:
    delayed = variant("delayed", {"live": "flights.kl123_delay", "gt": 0}, background=FEW)
    store_block(services, [delayed])
    store_recipient(services, "anna")
    assert open_image(client, services).headers["X-Blanco-Fallback"] == "no variant matched"
    ingest.put("/live/flights", json={"values": {"kl123_delay": 25}, "max_age_seconds": 300})
    assert corner_color(open_image(client, services).data) == hex_rgb(FEW)
    ingest.put("/live/flights", json={"values": {"kl123_delay": 0}, "max_age_seconds": 300})
    assert open_image(client, services).headers["X-Blanco-Fallback"] == "no variant matched"
    ingest.put("/live/flights", json={"values": {"kl123_delay": 25}, "max_age_seconds": 300})
    clock.advance(seconds=301)
    assert open_image(client, services).headers["X-Blanco-Fallback"] == "no variant matched"


def test_the_decision_preview_explains_a_stale_source(
    ingest: AdminApi, admin: AdminApi, banner_block: Services, clock: FakeClock
) -> None:
    ingest.put("/live/flights", json=seats(3, max_age=60))
    decision = "/campaigns/daily/blocks/hero/decision?recipient_id=anna"
    assert admin.get(decision).get_json()["variant_id"] == "few"
    clock.advance(minutes=2)
    explained = admin.get(decision).get_json()
    assert explained["variant_id"] is None
    assert explained["reason"] == "no variant matched"


def test_blocks_validate_live_settings(admin: AdminApi) -> None:
    admin.post("/campaigns", json={"id": "daily"})
    bad = {
        "id": "hero",
        "fallback": {"content": banner("Hi"), "target_url": "https://shop.example/"},
        "variants": [
            {
                **variant("v", {"live": "flights", "gt": 0}),
                "requires_live": ["Flights"],
            }
        ],
    }
    assert error_pointers(admin.post("/campaigns/daily/blocks", json=bad)) == [
        ("/variants/0/when/live", "variants.0.when.live"),
        ("/variants/0/requires_live/0", "variants.0.requires_live.0"),
    ]


# where live values are never seen


def test_fallback_content_sees_no_live_values(
    client: FlaskClient, ingest: AdminApi, services: Services
) -> None:
    reads_live = banner("{{ live.flights.seats_left }} seats", FALLBACK_BACKGROUND)
    store_block(services, [], fallback={"content": reads_live, "target_url": FALLBACK_URL})
    store_block(
        services,
        [],
        block_id="plain",
        fallback={"content": banner(" seats", FALLBACK_BACKGROUND), "target_url": FALLBACK_URL},
    )
    store_recipient(services, "anna")
    before = open_image(client, services)
    ingest.put("/live/flights", json=seats(12))
    after = open_image(client, services)
    assert after.headers["X-Blanco-Fallback"] == "no variant matched"
    assert after.data == before.data  # the pushed 12 is not drawn
    plain = client.get("/i/daily/plain.png", query_string={"r": services.signer.sign("anna")})
    assert after.data == plain.data  # the live read rendered empty


def test_live_html_sees_no_live_values(
    client: FlaskClient, ingest: AdminApi, services: Services
) -> None:
    live_html = {"source": '<p class="seats">[{{ live.flights.seats_left }}]</p>'}
    store_block(services, [{**variant("seats"), "html": live_html}])
    store_newsletter(services, [item("a")], slots=1, blocks=["hero"])
    store_recipient(services, "anna")
    ingest.put("/live/flights", json=seats(12))
    response = client.get("/v/daily", query_string={"r": services.signer.sign("anna")})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # ``live`` is not defined for live HTML: the template cannot render, and the page shows
    # the block's image (which may read fresh live values) instead
    assert 'class="seats"' not in page
    assert "/i/daily/hero.png?" in page


def test_slot_ranking_sees_no_live_values(
    client: FlaskClient, ingest: AdminApi, services: Services, redis_client: redis.Redis
) -> None:
    items = [
        item("live-only", "a", priority=10.0, when={"live": "flights.seats_left", "gt": 0}),
        item("everyone", "b", priority=1.0),
    ]
    store_newsletter(services, items, slots=2)
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
    ingest.put("/live/flights", json=seats(12))
    for slot in (1, 2):
        assert client.get(slot_url(services, "anna", slot, "2026-11-23")).status_code == 200
    shown = {
        fields["block"]: fields["variant"]
        for _, fields in campaign_event_entries(redis_client, "daily")
        if fields["type"] == "open"
    }
    assert shown["slot-1"] == "everyone"
    assert "live-only" not in shown.values()
    assert ingest.get("/live/flights").get_json()["fresh"] is True  # ignored, not stale


def test_audience_exports_see_no_live_values(
    admin: AdminApi, ingest: AdminApi, services: Services
) -> None:
    store_newsletter(
        services, [item("a")], slots=1, audience={"live": "flights.seats_left", "gt": 0}
    )
    store_subscriber(services, "anna")
    ingest.put("/live/flights", json=seats(12))
    response = admin.post("/campaigns/daily/sends", json={"format": "jsonl"})
    assert response.status_code == 200
    assert response.get_data(as_text=True).strip() == ""
    counts = admin.get("/campaigns/daily/sends").get_json()["sends"][0]["counts"]
    assert counts["audience"] == 0
    assert counts["not_selected"] == 1


def test_the_documented_limits_of_a_push(ingest: AdminApi) -> None:
    def push(values: dict[str, Any], max_age: int = 600) -> TestResponse:
        return ingest.put("/live/limits", json={"values": values, "max_age_seconds": max_age})

    accepted: list[dict[str, Any]] = [
        {f"v{n}": n for n in range(100)},  # 100 values
        {"text": "x" * 500},  # a 500-character string
        {"big": 2**53, "small": -(2**53)},
        {f"v{n}": "x" * 400 for n in range(40)},  # about 16 KiB in all
    ]
    for values in accepted:
        assert push(values).status_code == 200, list(values)[:3]
    for max_age in (1, 30 * 24 * 3600):
        assert push({"a": 1}, max_age).status_code == 200
    refused: list[tuple[dict[str, Any], str]] = [
        ({f"v{n}": n for n in range(101)}, "/values"),
        ({"text": "x" * 501}, "/values/text"),
        ({"big": 2**53 + 1}, "/values/big"),
        ({"small": -(2**53) - 1}, "/values/small"),
        ({f"v{n}": "x" * 400 for n in range(42)}, ""),  # over 16 KiB
    ]
    for values, pointer in refused:
        assert [p for p, _ in error_pointers(push(values))] == [pointer], pointer
    for max_age in (0, 30 * 24 * 3600 + 1):
        assert [p for p, _ in error_pointers(push({"a": 1}, max_age))] == ["/max_age_seconds"]
    assert ingest.get("/live/limits").get_json()["values"] == {"a": 1}  # refusals changed nothing


def test_at_most_100_sources_then_a_conflict(ingest: AdminApi) -> None:
    for n in range(100):
        assert ingest.put(f"/live/s{n}", json=seats(n)).status_code == 200
    problem(ingest.put("/live/one_more", json=seats(1)), 409)
    assert ingest.put("/live/s0", json=seats(5)).status_code == 200  # replacing one is fine
    assert ingest.get("/live/one_more").status_code == 404
