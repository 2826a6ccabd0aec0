"""Content feeds in Redis: items by id in one hash per feed, with a version counter.

Open-time code keeps each feed's parsed items in memory (``models.config_cache``) and re-reads
them when the feed's version moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis

from models.errors import FieldError, InvalidInput, NotFound
from models.newsletter.content_feed import ContentItem
from models.storage import keys
from models.storage.batch import Command, send_items
from models.storage.config_versions import announce_config

FEED_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Feed:
    """A feed's items at one version."""

    feed_id: str
    version: int
    items: dict[str, ContentItem]


def parse_feed(feed_id: str, version: str | None, documents: dict[str, str]) -> Feed:
    """A feed from its stored version counter and items hash."""
    items = {i: ContentItem.model_validate_json(d) for i, d in sorted(documents.items())}
    return Feed(feed_id, int(version or 0), items)


class FeedStore:
    """Reads and writes content items. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @staticmethod
    def validate_feed_id(feed_id: str) -> None:
        """InvalidInput unless ``feed_id`` is a valid feed id."""
        if not FEED_ID.match(feed_id):
            raise InvalidInput(
                "invalid feed id",
                [FieldError(("feed_id",), "lower-case letters, digits, - and _ (at most 64)")],
            )

    def item_commands(self, feed_id: str, item: ContentItem) -> Iterator[Command]:
        """The commands that store one item (and move the feed's version)."""
        document = item.model_dump_json(by_alias=True, exclude_none=True)
        yield ("HSET", keys.feed_items(feed_id), item.id, document)
        yield ("INCR", keys.feed_version(feed_id))
        yield ("SADD", keys.FEED_INDEX, feed_id)

    def put_items(self, feed_id: str, items: Iterable[ContentItem]) -> int:
        """Upsert items by id, pipelined; return how many were written."""
        written = send_items(self.redis, items, lambda item: self.item_commands(feed_id, item))
        announce_config(self.redis)
        return written

    def delete_item(self, feed_id: str, item_id: str) -> None:
        """Remove an item; NotFound (and nothing changed) if the feed has no such item."""
        if not self.redis.hdel(keys.feed_items(feed_id), item_id):
            raise NotFound(f"no item {item_id!r} in feed {feed_id!r}")
        self.redis.incr(keys.feed_version(feed_id))
        announce_config(self.redis)

    def delete_feed(self, feed_id: str) -> None:
        """Remove a feed and its items; NotFound (and nothing changed) if there is no such
        feed."""
        # not atomic (two hash slots): the items go first, so a feed is never listed without
        # being deletable again
        removed = self.redis.delete(keys.feed_items(feed_id))
        unlisted = self.redis.srem(keys.FEED_INDEX, feed_id)
        if not removed and not unlisted:
            raise NotFound(f"no feed {feed_id!r}")
        self.redis.incr(keys.feed_version(feed_id))
        announce_config(self.redis)

    def list_feeds(self) -> list[str]:
        """The ids of the feeds (an emptied feed stays listed until it is deleted)."""
        return sorted(self.redis.smembers(keys.FEED_INDEX))

    def get_item(self, feed_id: str, item_id: str) -> ContentItem | None:
        """One item, or None."""
        document = self.redis.hget(keys.feed_items(feed_id), item_id)
        return ContentItem.model_validate_json(document) if document else None

    def load(self, feed_id: str) -> Feed:
        """Every item of the feed with the version they belong to (one transaction)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(keys.feed_version(feed_id))
        pipe.hgetall(keys.feed_items(feed_id))
        version, documents = pipe.execute()
        return parse_feed(feed_id, version, documents)
