"""Review: what an erasure still leaves behind.

Each test names one path by which a recipient's data could survive ``DELETE /recipients/<id>``:
a personal render stored in the shared cache, a worker's memory copy of a personal render, a
write (a decision, a ranking) made on its way before the erasure and sent after it, and a
tombstone of Blanco 0.1 that a Redis Cluster no longer checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.decision import Decision
from models.recipients.tombstones import Tombstones
from models.storage import keys
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.factories import (
    RoundTrips,
    corner_color,
    hex_rgb,
    store_block,
    store_recipient,
    variant,
)
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


def test_a_personal_render_never_reaches_redis_by_any_route(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    """The email's image, the page's image and an admin preview all draw "Hi Anna": none of
    them stores that render in the shared cache, so an erasure has nothing to find there."""
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    _, channel_key = services.api_keys.create("website", ["channel"])
    before = render_keys(redis_client)
    shown = [
        client.get("/i/daily/hero.png", query_string=token(services)),
        client.get(
            "/x/v1/campaigns/daily/blocks/hero/decision",
            query_string=token(services),
            headers={"Authorization": f"Bearer {channel_key}"},
        ),
        client.get("/x/v1/campaigns/daily/blocks/hero/image.png", query_string=token(services)),
        client.get(
            "/api/v1/campaigns/daily/blocks/hero/preview?recipient_id=anna", headers=admin_headers
        ),
    ]
    images = [response.data for response in shown if response.mimetype == "image/png"]
    assert [corner_color(image) for image in images] == [hex_rgb(PERSONAL)] * 3  # "Hi Anna"
    assert render_keys(redis_client) == before


def test_every_worker_forgets_the_personal_renders_it_holds_on_any_erasure(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    make_app: Callable[..., Flask],
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    other = make_app()  # a second worker, which drew Anna's banner itself
    other_services: Services = other.extensions["blanco"]
    cache = other_services.render_cache.local
    cached = cache.digests()
    shown = other.test_client().get("/i/daily/hero.png", query_string=token(other_services))
    assert corner_color(shown.data) == hex_rgb(PERSONAL)
    (digest,) = cache.digests() - cached
    remembered = other.extensions["blanco.open"].drawing.keys  # inputs: "Anna" among them
    assert len(remembered) == 1
    erase(client, admin_headers)  # through the first worker
    other.extensions["blanco.open"].config.refresh(force=True)  # it hears of the erasure
    assert cache.get(digest) is None
    assert len(remembered) == 0


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


def test_a_first_personal_open_asks_redis_only_for_the_recipient(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anna's first open draws "Hi Anna": no render-cache lookup or write, only her one read
    and her new decision, stored before the answer so that a click right after follows it (the
    record goes to the background writer)."""
    app = make_app(config_check_seconds=60, record_in_background=True)
    services: Services = app.extensions["blanco"]
    client = app.test_client()
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    store_recipient(services, "bram", {"first_name": "Bram"})
    core = app.extensions["blanco.open"]
    assert client.get("/i/daily/hero.png", query_string=token(services, "bram")).status_code == 200
    trips = RoundTrips(monkeypatch)
    shown = client.get("/i/daily/hero.png", query_string=token(services))
    monkeypatch.undo()
    assert corner_color(shown.data) == hex_rgb(PERSONAL)
    assert trips.total == 2, trips.sent
    assert core.recorder.flush(timeout=5)
