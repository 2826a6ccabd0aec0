"""Admin API: content feeds and their items, one by one and in bulk (JSON Lines or CSV)."""

from __future__ import annotations

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from models.errors import NotFound
from models.ingest.csv_rows import CONTENT_ITEMS
from models.newsletter.content_feed import ContentItem, FeedItemsAnswer
from server.admin_api.bulk_bodies import csv_body, ingest_request
from server.admin_api.registry import api
from server.services import services

TAG = "content feeds"
FEED = "/feeds/<feed_id>"
ITEM = f"{FEED}/items/<item_id>"


@api.operation("GET", "/feeds", summary="List the content feeds", tag=TAG)
def list_feeds() -> ResponseReturnValue:
    """The ids of the feeds (an emptied feed stays listed until it is deleted)."""
    return jsonify({"feeds": services().feeds.list_feeds()})


@api.operation(
    "GET",
    f"{FEED}/items",
    summary="List a feed's items",
    tag=TAG,
    response=FeedItemsAnswer,
    errors=(404,),
)
def list_items(feed_id: str) -> ResponseReturnValue:
    """Every item of the feed, by id, with the feed's version."""
    feed = services().feeds.load(feed_id)
    if not feed.items and feed_id not in services().feeds.list_feeds():
        raise NotFound(f"no feed {feed_id!r}")
    answer = FeedItemsAnswer(feed_id=feed_id, version=feed.version, items=list(feed.items.values()))
    return jsonify(answer.model_dump(mode="json", by_alias=True, exclude_none=True))


@api.operation(
    "PUT",
    ITEM,
    summary="Create or replace a content item",
    tag=TAG,
    body=ContentItem,
    body_fills=("id", "item_id"),
    response=ContentItem,
    errors=(422,),
)
def put_item(feed_id: str, item_id: str, body: ContentItem) -> ResponseReturnValue:
    """Store the item; the next ranking of any newsletter on this feed can show it."""
    services().feeds.validate_feed_id(feed_id)
    services().feeds.put_items(feed_id, [body])
    return jsonify(body.model_dump(mode="json", by_alias=True, exclude_none=True))


@api.operation(
    "GET", ITEM, summary="Get a content item", tag=TAG, response=ContentItem, errors=(404,)
)
def get_item(feed_id: str, item_id: str) -> ResponseReturnValue:
    """One item."""
    item = services().feeds.get_item(feed_id, item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in feed {feed_id!r}")
    return jsonify(item.model_dump(mode="json", by_alias=True, exclude_none=True))


@api.operation("DELETE", ITEM, summary="Remove a content item", tag=TAG, status=204, errors=(404,))
def delete_item(feed_id: str, item_id: str) -> ResponseReturnValue:
    """Remove the item; slots that ranked it show their fallback from now on."""
    services().feeds.delete_item(feed_id, item_id)
    return Response(status=204)


@api.operation(
    "DELETE", FEED, summary="Remove a feed and its items", tag=TAG, status=204, errors=(404,)
)
def delete_feed(feed_id: str) -> ResponseReturnValue:
    """Remove the feed."""
    services().feeds.delete_feed(feed_id)
    return Response(status=204)


@api.operation(
    "POST",
    f"{FEED}/items/bulk",
    summary="Bulk upsert content items (JSON Lines or CSV)",
    tag=TAG,
    body=ContentItem,
    body_media_type="application/x-ndjson",
    other_bodies=csv_body(CONTENT_ITEMS),
    errors=(415, 422),
)
def bulk_items(feed_id: str) -> ResponseReturnValue:
    """One ContentItem per line or CSV row (tags separated by ``;``); good ones are stored, bad
    ones reported by line. Re-importing a file changes nothing (items are upserted by id)."""
    feeds = services().feeds
    feeds.validate_feed_id(feed_id)
    return jsonify(
        ingest_request(CONTENT_ITEMS, lambda items: feeds.put_items(feed_id, items)).as_dict()
    )
