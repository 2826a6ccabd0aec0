"""Rendered images by a hash of their inputs: a small per-process LRU in front of Redis.

Redis holds each shared render under ``keys.render_cache(digest)`` with a TTL, within a memory
cap. A render that drew a recipient's profile fields is *personal*: only that recipient's own
re-opens could reuse it (a mail proxy or Apple's prefetch fetches it once and keeps it), so it is
kept in the worker's memory only, never in Redis, and every worker drops the personal renders it
holds whenever any recipient is erased (``LocalImageCache.drop_personal``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from models.storage import keys
from models.storage.batch import Batch, NodeGuard
from renderers.base import RenderedImage

_TYPE_SEPARATOR = b"\n"


class LocalImageCache:
    """A thread-safe LRU bounded by the total bytes it holds."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, RenderedImage] = OrderedDict()
        self._personal: set[str] = set()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> RenderedImage | None:
        """The cached image, marking it recently used."""
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
            return image

    def put(self, key: str, image: RenderedImage, *, personal: bool = False) -> None:
        """Add an image, evicting the least recently used ones to stay within bounds."""
        if len(image.body) > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old.body)
            self._items[key] = image
            self._size += len(image.body)
            if personal:
                self._personal.add(key)
            while self._size > self.max_bytes:
                evicted_key, evicted = self._items.popitem(last=False)
                self._size -= len(evicted.body)
                self._personal.discard(evicted_key)

    def digests(self) -> frozenset[str]:
        """The digests held now, personal ones included."""
        with self._lock:
            return frozenset(self._items)

    def drop_personal(self) -> None:
        """Forget every personal render (a recipient was erased somewhere)."""
        with self._lock:
            for key in self._personal:
                image = self._items.pop(key, None)
                if image is not None:
                    self._size -= len(image.body)
            self._personal.clear()


class RenderCache:
    """Local LRU, then Redis (bytes client, TTL per entry)."""

    def __init__(
        self,
        client: Any,
        ttl_seconds: int,
        local_bytes: int,
        max_bytes: int,
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
        return self.lookup_shared(digest)

    def lookup_shared(
        self, digest: str, guard: NodeGuard | None = None
    ) -> tuple[RenderedImage | None, str]:
        """The render as Redis holds it (kept locally once found): ``hit_redis`` or ``miss``.
        Raises Redis failures."""
        batch = Batch(self.redis, guard=guard)
        batch.get(keys.render_cache(digest))
        (stored,) = batch.execute()
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
        """Store a render locally and in Redis (see ``put_shared``)."""
        self.local.put(digest, image)
        return self.put_shared(digest, image)

    def put_shared(self, digest: str, image: RenderedImage, guard: NodeGuard | None = None) -> bool:
        """Store a render in Redis while within the memory cap; whether Redis took it. Raises
        Redis failures.

        The cap is kept with a byte counter per TTL window: an entry lives at most two windows,
        so the bytes admitted in this window and the previous one bound what Redis holds.
        """
        payload = image.media_type.encode() + _TYPE_SEPARATOR + image.body
        window = int(time.time()) // self.ttl
        current, previous = keys.render_cache_bytes(window), keys.render_cache_bytes(window - 1)
        counting = Batch(self.redis, guard=guard)
        admitted = counting.add("INCRBY", current, len(payload))
        counting.expire(current, 2 * self.ttl)
        earlier = counting.get(previous)
        replies = counting.execute()
        if int(replies[admitted]) + int(replies[earlier] or 0) > self.max_bytes:
            return False
        storing = Batch(self.redis, guard=guard)
        storing.add("SET", keys.render_cache(digest), payload, "EX", self.ttl)
        storing.execute()
        return True
