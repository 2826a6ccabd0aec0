"""The lifetimes of docs/redis.md's key table: configuration has no TTL except sends and their
membership sets (the decision TTL), an export's working set (a day) and its lock (an hour);
recent clicks live two minutes; renders live the render cache's TTL, and its byte counter two
windows; a recipient's last touches and click references live their attribution windows, and
the credits of their orders the retention."""

from __future__ import annotations

from typing import Any

import redis
from flask.testing import FlaskClient

from models.newsletter.sends import plan_send
from models.recipients.customer_data import Transaction
from models.storage import keys
from server.services import Services, audience_export
from tests.factories import AdminApi, store_block, store_recipient, variant
from tests.newsletter_fixtures import click_url, item, store_newsletter, store_subscriber

DAY = 24 * 3600
HOUR = 3600


def ttls(redis_client: redis.Redis, pattern: str) -> dict[str, int]:
    """Every key matching ``pattern`` with its TTL in seconds (-1: none)."""
    return {key: redis_client.ttl(key) for key in redis_client.scan_iter(match=pattern)}


def test_configuration_keeps_no_ttl_but_sends_live_the_decision_ttl(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    admin_headers: dict[str, str],
) -> None:
    store_block(services, [variant("hot", {"segment": "vip"})])
    store_newsletter(services, [item("a")], slots=1, holdout=0.5)
    services.newsletters.suppress("daily", ["zoe"])
    for rid in ("anna", "bram", "carl", "dina", "zoe"):
        store_subscriber(services, rid)
    api = AdminApi(client, admin_headers)
    pushed = api.put("/live/flights", json={"values": {"x": 1}, "max_age_seconds": 60})
    assert pushed.status_code == 200
    exported = api.post("/campaigns/daily/sends", json={"format": "jsonl"})
    assert exported.status_code == 200
    assert exported.get_data(as_text=True).count("bl_token") >= 1  # streamed to its end
    send_id = exported.headers["X-Blanco-Send-Id"]

    decision_ttl = services.settings.decision_ttl_seconds
    send_keys = {
        keys.send("daily", send_id),
        keys.send_members("daily", send_id),
        keys.send_holdout("daily", send_id),
    }
    configuration = ttls(redis_client, "blanco:cfg:*")
    assert send_keys <= configuration.keys()
    for key, ttl in configuration.items():
        if key in send_keys:
            assert 0 < ttl <= decision_ttl, key
        else:
            assert ttl == -1, key
    # the working set and the lock are gone once the export ends
    assert keys.send_considered("daily", send_id) not in configuration
    assert keys.send_export_lock("daily", send_id) not in configuration


def test_an_exports_working_set_lives_a_day_and_its_lock_an_hour(
    services: Services, redis_client: redis.Redis
) -> None:
    newsletter = store_newsletter(services, [item("a")], slots=1)
    for rid in ("anna", "bram"):
        store_subscriber(services, rid)
    now = services.clock()
    send = plan_send(newsletter, None, now)
    rows = audience_export(services).rows(newsletter, send, now)
    next(rows)  # under way
    assert 0 < redis_client.ttl(keys.send_considered("daily", send.id)) <= DAY
    assert 0 < redis_client.ttl(keys.send_export_lock("daily", send.id)) <= HOUR
    list(rows)
    assert not redis_client.exists(keys.send_considered("daily", send.id))
    assert not redis_client.exists(keys.send_export_lock("daily", send.id))


def test_recent_clicks_live_two_minutes(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    headers = {"User-Agent": "Mozilla/5.0 (Macintosh) Firefox/120.0", "Accept": "text/html"}
    token = services.signer.sign("anna")
    assert client.get("/c/daily/hero", query_string={"r": token}, headers=headers).status_code
    assert 60 < redis_client.ttl(keys.recent_clicks("anna")) <= 120


def test_renders_live_the_cache_ttl_and_the_byte_counter_two_windows(
    make_app: Any, redis_client: redis.Redis
) -> None:
    app = make_app(render_cache_ttl_seconds=600)
    services: Services = app.extensions["blanco"]
    store_block(services, [variant("hot")])
    assert app.test_client().get("/i/daily/hero.png").status_code == 200  # the generic fallback
    renders = ttls(redis_client, keys.render_cache("*"))
    assert renders
    assert all(0 < ttl <= 600 for ttl in renders.values())
    counters = ttls(redis_client, "blanco:render-bytes:*")
    assert counters
    assert all(600 < ttl <= 1200 for ttl in counters.values())


def test_touches_click_references_and_credits_live_their_windows(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    ingest_headers: dict[str, str],
) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    person = {
        "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Accept": "text/html,*/*;q=0.8",
    }
    token = {"r": services.signer.sign("anna")}
    client.get("/i/daily/hero.png", query_string=token, headers=person)
    client.get("/c/daily/hero", query_string=token, headers=person)
    order = {"recipient_id": "anna", "order_id": "o-1", "amount": "5", "currency": "EUR"}
    assert AdminApi(client, ingest_headers).post("/conversions", json=order).status_code == 201

    settings = services.settings
    click_days = round(settings.attribution_click_days * DAY)
    (ref,) = redis_client.scan_iter(match="blanco:clk:*")
    expected = {
        keys.last_click("anna"): click_days,
        keys.click_ids("anna"): click_days,
        ref: click_days,
        keys.last_view("anna"): round(settings.attribution_view_days * DAY),
        keys.attributions("anna"): settings.stats_retention_days * DAY,
    }
    for key, ttl in expected.items():
        assert 0 < redis_client.ttl(key) <= ttl, key
        assert redis_client.ttl(key) > ttl - 60, key


def test_what_was_bought_and_item_clicks_live_their_ttls(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_newsletter(services, [item("lisbon", "city_trip")], slots=1)
    store_subscriber(services, "anna", scores={"affinity:city_trip": 0.9})
    person = {
        "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Accept": "text/html,*/*;q=0.8",
    }
    assert client.get(click_url(services, "anna", 1), headers=person).status_code == 302
    services.conversions.record(
        [
            Transaction.model_validate(
                {
                    "recipient_id": "anna",
                    "order_id": "o-1",
                    "at": services.clock().isoformat(),
                    "amount": "10",
                    "currency": "EUR",
                    "items": [{"id": "lisbon", "category": "city_trip"}],
                }
            )
        ]
    )
    settings = services.settings
    assert redis_client.smembers(keys.bought("anna")) == {"lisbon", "category:city_trip"}
    assert 0 < redis_client.ttl(keys.bought("anna")) <= settings.profile_ttl_seconds
    assert redis_client.hkeys(keys.item_clicks("anna")) == ["lisbon"]
    assert 0 < redis_client.ttl(keys.item_clicks("anna")) <= settings.decision_ttl_seconds
