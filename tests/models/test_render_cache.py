"""The render cache: a local LRU in front of Redis, with a TTL and a memory cap in Redis."""

from __future__ import annotations

import redis

from models.assets.render_cache import LocalImageCache, RenderCache
from models.storage import keys
from renderers.base import RenderedImage
from tests.factories import raw_client


def image(size: int, fill: bytes = b"x") -> RenderedImage:
    return RenderedImage(fill * size, "image/png")


def test_lookup_reports_where_it_was_found(redis_url: str, redis_client: redis.Redis) -> None:
    raw = raw_client(redis_url)
    cache = RenderCache(raw, ttl_seconds=60, local_bytes=10_000, max_bytes=10_000)
    assert cache.lookup("a") == (None, "miss")
    assert cache.put("a", image(100))
    assert cache.lookup("a")[1] == "hit_local"
    fresh = RenderCache(raw, ttl_seconds=60, local_bytes=10_000, max_bytes=10_000)
    found, where = fresh.lookup("a")
    assert where == "hit_redis"
    assert found == image(100)
    assert 0 < redis_client.ttl(keys.render_cache("a")) <= 60


def test_redis_stops_admitting_past_the_memory_cap(
    redis_url: str, redis_client: redis.Redis
) -> None:
    cache = RenderCache(raw_client(redis_url), ttl_seconds=60, local_bytes=100_000, max_bytes=1_000)
    admitted = [cache.put(f"d{i}", image(300)) for i in range(5)]
    assert admitted == [True, True, True, False, False]
    stored = list(redis_client.scan_iter(keys.render_cache("*")))
    assert len(stored) == 3
    assert cache.get("d4") == image(300)  # still served from this worker's memory


def test_local_cache_evicts_least_recently_used() -> None:
    local = LocalImageCache(max_bytes=1_000)
    local.put("a", image(200))
    local.put("b", image(200))
    assert local.get("a") is not None  # a is now the most recent
    for name in ("c", "d", "e", "f"):
        local.put(name, image(200))
    assert local.get("b") is None
    assert local.get("a") is not None
    local.put("huge", image(600))  # more than a quarter of the cache: not kept
    assert local.get("huge") is None
