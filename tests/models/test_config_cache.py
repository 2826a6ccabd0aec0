"""Each worker's configuration cache: current within its check interval, never a round trip
per open for configuration, and still holding the last known blocks when Redis is away."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis

from models.campaigns.campaign_store import CampaignStore
from models.campaigns.live_data import LivePush
from models.campaigns.live_store import LiveStore
from models.campaigns.specs import BlockSpec, CampaignSpec
from models.config_cache import MAX_ABSENT, ConfigCache
from models.storage import keys
from server.embedded_redis import EmbeddedRedis
from tests.factories import block

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _store(client: redis.Redis, background: str) -> CampaignStore:
    store = CampaignStore(client)
    if store.get_campaign("daily") is None:
        store.create_campaign(CampaignSpec(id="daily"))
    spec = block(variants=[])
    spec["fallback"]["content"]["background"] = background
    store.put_block("daily", BlockSpec.model_validate(spec))
    return store


def _background(cache: ConfigCache) -> str:
    found = cache.block("daily", "hero")
    assert found is not None
    return str(found.fallback.content.model_dump()["background"])


def test_an_edit_shows_once_the_worker_checks_again(redis_client: redis.Redis) -> None:
    clock = Monotonic()
    cache = ConfigCache(redis_client, check_every=1.0, monotonic=clock)
    _store(redis_client, "#111111")
    cache.refresh()
    assert _background(cache) == "#111111"
    _store(redis_client, "#222222")  # announced to every worker
    cache.refresh()
    assert _background(cache) == "#111111"  # checked less than a second ago
    clock.now += 1.0
    cache.refresh()
    assert _background(cache) == "#222222"


def test_configuration_is_not_read_again_until_it_changes(redis_client: redis.Redis) -> None:
    clock = Monotonic()
    cache = ConfigCache(redis_client, check_every=1.0, monotonic=clock)
    _store(redis_client, "#111111")
    cache.refresh()
    assert _background(cache) == "#111111"
    # written behind the stores' back (no announcement): the held copy stands
    stored = redis_client.get(keys.block("daily", "hero"))
    assert stored is not None
    redis_client.set(keys.block("daily", "hero"), stored.replace("#111111", "#333333"))
    clock.now += 5
    cache.refresh()
    assert _background(cache) == "#111111"


def test_a_live_push_shows_once_the_worker_checks_again(redis_client: redis.Redis) -> None:
    clock = Monotonic()
    live = LiveStore(redis_client)
    cache = ConfigCache(redis_client, check_every=1.0, monotonic=clock)
    live.put(LivePush(source="flights", values={"seats_left": 3}, max_age_seconds=600), NOW)
    cache.refresh()
    assert cache.live().fresh(NOW) == {"flights": {"seats_left": 3}}
    live.put(LivePush(source="flights", values={"seats_left": 2}, max_age_seconds=600), NOW)
    assert cache.live().fresh(NOW) == {"flights": {"seats_left": 3}}
    clock.now += 1.0
    cache.refresh()
    assert cache.live().fresh(NOW) == {"flights": {"seats_left": 2}}


@pytest.mark.own_redis
def test_the_last_known_block_outlives_redis(tmp_path: Path) -> None:
    own = EmbeddedRedis(tmp_path / "redis")
    client = redis.Redis.from_url(own.start(), decode_responses=True, socket_timeout=0.2)
    try:
        _store(client, "#111111")
        cache = ConfigCache(client, check_every=0)
        cache.refresh()
        assert _background(cache) == "#111111"
    finally:
        own.stop()
    cache.refresh()  # never raises: what is held is served
    assert _background(cache) == "#111111"
    known = cache.last_known_block("daily", "hero")
    assert known is not None
    assert known.fallback.target_url.startswith("https://")


def test_a_flood_of_unknown_ids_keeps_the_last_known_block(redis_client: redis.Redis) -> None:
    """Review: every id an open looks up is held, found or not (the open routes take campaign,
    block and send ids from the URL), and past ``MAX_ABSENT`` the whole map is dropped, with
    the blocks whose fallbacks the open path draws while Redis is away."""
    _store(redis_client, "#111111")
    cache = ConfigCache(redis_client, check_every=0)
    cache.refresh()
    assert _background(cache) == "#111111"
    cache.assets([f"sha256:{n:064x}" for n in range(MAX_ABSENT + 1)])  # ids nobody stored
    cache.campaign_and_block("nobody", "nothing")
    assert cache.last_known_block("daily", "hero") is not None
