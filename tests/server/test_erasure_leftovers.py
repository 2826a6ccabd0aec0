"""Review: what an erasure still leaves behind.

Each test names one path by which a recipient's data survives ``DELETE /recipients/<id>``: a
personal render stored by a route that never indexes it under the recipient, a worker's memory
copy of a personal render that is not marked personal, a write (a decision, a ranking, a render's
index) made on its way before the erasure and sent after it, and a tombstone of Blanco 0.1 that a
Redis Cluster no longer checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient

from models.decision import Decision
from models.recipients.tombstones import Tombstones
from models.storage import keys
from renderers.base import RenderedImage
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.factories import corner_color, hex_rgb, store_block, store_recipient, variant
from tests.newsletter_fixtures import item, slot_url, store_newsletter

PERSONAL = "#0B7A75"
GREETING = variant("hi", None, text="Hi {{ first_name }}", background=PERSONAL)


def render_keys(client: Any) -> set[str]:
    """The render cache's entries in Redis (every node of a cluster)."""
    return {str(key) for key in client.scan_iter(match="blanco:render:*", count=1000)}


def token(services: Services, recipient_id: str = "anna") -> dict[str, str]:
    """The query string carrying the recipient's signed token."""
    return {"r": services.signer.sign(recipient_id)}


def erase(client: FlaskClient, headers: dict[str, str], recipient_id: str = "anna") -> None:
    """Erase the recipient through the admin API."""
    assert client.delete(f"/api/v1/recipients/{recipient_id}", headers=headers).status_code == 204


def test_an_erasure_deletes_the_personal_render_of_the_channel_image(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    _, channel_key = services.api_keys.create("website", ["channel"])
    decided = client.get(
        "/x/v1/campaigns/daily/blocks/hero/decision",
        query_string=token(services),
        headers={"Authorization": f"Bearer {channel_key}"},
    )
    assert decided.get_json()["variant"] == "hi"  # stored; nothing drawn yet
    before = render_keys(redis_client)
    shown = client.get("/x/v1/campaigns/daily/blocks/hero/image.png", query_string=token(services))
    assert corner_color(shown.data) == hex_rgb(PERSONAL)  # "Hi Anna", drawn for the page
    personal = render_keys(redis_client) - before
    assert personal
    erase(client, admin_headers)
    assert render_keys(redis_client) & personal == set()


def test_an_erasure_deletes_the_personal_render_of_an_admin_preview(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    before = render_keys(redis_client)
    preview = client.get(
        "/api/v1/campaigns/daily/blocks/hero/preview?recipient_id=anna", headers=admin_headers
    )
    assert corner_color(preview.data) == hex_rgb(PERSONAL)
    personal = render_keys(redis_client) - before
    assert personal
    erase(client, admin_headers)
    assert render_keys(redis_client) & personal == set()


def test_every_worker_forgets_a_personal_render_it_took_from_redis(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    make_app: Callable[..., Flask],
    redis_client: redis.Redis,
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    before = render_keys(redis_client)
    assert corner_color(client.get("/i/daily/hero.png", query_string=token(services)).data) == (
        hex_rgb(PERSONAL)
    )
    (digest,) = {key.removeprefix("blanco:render:") for key in render_keys(redis_client) - before}
    other = make_app()  # a second worker: it finds the render in Redis, not in its memory
    other_services: Services = other.extensions["blanco"]
    shown = other.test_client().get("/i/daily/hero.png", query_string=token(other_services))
    assert corner_color(shown.data) == hex_rgb(PERSONAL)
    assert other_services.render_cache.local.get(digest) is not None
    erase(client, admin_headers)
    other.extensions["blanco.open"].config.refresh(force=True)  # it hears of the erasure
    assert other_services.render_cache.local.get(digest) is None


def test_a_record_queued_before_an_erasure_writes_nothing_after_it(
    app: Flask,
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    client.get("/i/daily/hero.png", query_string=token(services))
    stored = redis_client.hget(keys.decisions("anna"), "daily/hero")
    assert stored is not None
    shown = Decision.from_json("daily", "hero", stored)
    erase(client, admin_headers)
    assert list(redis_client.scan_iter(match="*{r:anna}*")) == []
    # An open that read Anna just before the erasure hands its record to the background writer,
    # which writes it just after: the same write the recorder makes for that open.
    app.extensions["blanco.open"].record(
        "anna", shown, "open", "apple_mail", "human", store_decision=True
    )
    assert list(redis_client.scan_iter(match="*{r:anna}*")) == []


def test_a_tombstone_of_blanco_0_1_still_refuses_the_id(redis_client: redis.Redis) -> None:
    tombstones = Tombstones(redis_client, [SIGNING_KEY])
    # Blanco 0.1 kept every tombstone in one set; data moved to a cluster keeps that set.
    redis_client.sadd(keys.ERASED_RECIPIENTS_V1, *tombstones.marks("anna"))
    assert tombstones.is_erased("anna")
    assert tombstones.erased_among({"anna", "bram"}) == {"anna"}


def test_a_ranking_stored_just_after_an_erasure_is_not_kept(
    app: Flask,
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    """A slot open reads Anna, the erasure lands while it ranks the feed, then the open stores
    its ranking: the store checks the tombstone on Anna's node and writes nothing."""
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
    store_newsletter(services, [item("crete", "beach"), item("zermatt", "ski")], slots=1)
    config = app.extensions["blanco.open"].config
    feed = config.feed

    def erase_meanwhile(feed_id: str) -> Any:
        erase(client, admin_headers)
        return feed(feed_id)

    config.feed = erase_meanwhile
    assert client.get(slot_url(services, "anna", 1, "2026-11-23")).status_code == 200
    assert list(redis_client.scan_iter(match="*{r:anna}*")) == []
    assert not redis_client.exists(keys.rankings("anna"))


def test_a_personal_render_stored_just_after_an_erasure_is_not_indexed(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    """A render drawn for Anna before her erasure and stored after it: the render stays (it is
    shared by digest, and expires), but nothing under her tag is re-created."""
    store_recipient(services, "anna", {"first_name": "Anna"})
    erase(client, admin_headers)
    image = RenderedImage(b"\x89PNG drawn for anna", "image/png")
    assert services.render_cache.put_shared("d" * 64, image, owner="anna")
    assert list(redis_client.scan_iter(match="*{r:anna}*")) == []
    assert not redis_client.exists(keys.personal_renders("anna"))
