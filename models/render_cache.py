"""Rendered images by a hash of their inputs: a small per-process LRU in front of Redis."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import redis

from models import keys
from renderers.base import RenderedImage

_TYPE_SEPARATOR = b"\n"


class LocalImageCache:
    """A thread-safe LRU bounded by the total bytes it holds."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, RenderedImage] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> RenderedImage | None:
        """The cached image, marking it recently used."""
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
            return image

    def put(self, key: str, image: RenderedImage) -> None:
        """Add an image, evicting the least recently used ones to stay within bounds."""
        if len(image.body) > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old.body)
            self._items[key] = image
            self._size += len(image.body)
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted.body)


class RenderCache:
    """Local LRU, then Redis (bytes client, TTL per entry)."""

    def __init__(
        self, client: redis.Redis, ttl_seconds: int, local_bytes: int, max_bytes: int
    ) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes
        self.local = LocalImageCache(local_bytes)

    def lookup(self, digest: str) -> tuple[RenderedImage | None, str]:
        """A cached render and where it was found: ``hit_local``, ``hit_redis`` or ``miss``."""
        image = self.local.get(digest)
        if image is not None:
            return image, "hit_local"
        stored = self.redis.get(keys.render_cache(digest))
        if not stored:
            return None, "miss"
        media_type, _, body = bytes(stored).partition(_TYPE_SEPARATOR)
        image = RenderedImage(body, media_type.decode())
        self.local.put(digest, image)
        return image, "hit_redis"

    def get(self, digest: str) -> RenderedImage | None:
        """A cached render, or None."""
        return self.lookup(digest)[0]

    def put(self, digest: str, image: RenderedImage) -> bool:
        """Store a render locally, and in Redis while within the memory cap; return whether
        Redis took it.

        The cap is kept with a byte counter per TTL window: an entry lives at most two windows,
        so the bytes admitted in this window and the previous one bound what Redis holds.
        """
        self.local.put(digest, image)
        payload = image.media_type.encode() + _TYPE_SEPARATOR + image.body
        window = int(time.time()) // self.ttl
        current, previous = keys.render_cache_bytes(window), keys.render_cache_bytes(window - 1)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(current, len(payload))
        pipe.expire(current, 2 * self.ttl)
        pipe.get(previous)
        admitted, _, earlier = pipe.execute()
        if int(admitted) + int(earlier or 0) > self.max_bytes:
            return False
        self.redis.set(keys.render_cache(digest), payload, ex=self.ttl)
        return True
