"""The render cache through the image route (docs/renderers.md, "The render cache"): a block
whose content is not personal is drawn once for every recipient, and another worker finds it
in Redis; a render drawn with a placeholder for a missing asset is never cached, so the image
shows as soon as it is uploaded."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from models.storage import keys
from server.services import EXTENSION, Services
from tests.factories import AdminApi, banner, block, store_block, store_recipient
from tests.sample_images import image_bytes

RECIPIENTS = ("anna", "bram", "chloe", "daan", "sara", "eva")


def counter(client: FlaskClient, name: str, **labels: str) -> float:
    """The value of one sample of /metrics (0 when it is not exposed)."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def render_keys(redis_client: redis.Redis) -> list[str]:
    return list(redis_client.scan_iter(match=keys.render_cache("*")))


def open_image(client: FlaskClient, services: Services, recipient_id: str) -> bytes:
    token = services.signer.sign(recipient_id)
    response = client.get("/i/daily/hero.png", query_string={"r": token})
    assert response.status_code == 200
    assert "X-Blanco-Fallback" not in response.headers
    return bytes(response.data)


def test_content_that_is_not_personal_is_drawn_once_for_everyone(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app()
    services: Services = app.extensions[EXTENSION]
    everyone = {
        "id": "sale",
        "content": banner("Spring sale: 20% off", "#0B7A75"),
        "target_url": "https://shop.example/sale",
    }
    store_block(services, [everyone])
    for rid in RECIPIENTS:
        store_recipient(services, rid)
    client = app.test_client()
    images = {open_image(client, services, rid) for rid in RECIPIENTS}
    assert len(images) == 1
    assert counter(client, "blanco_renders_total", block_type="banner") == 1
    assert len(render_keys(redis_client)) == 1

    other_worker = make_app()
    other = other_worker.test_client()
    assert open_image(other, services, "anna") in images
    assert counter(other, "blanco_renders_total", block_type="banner") == 0
    assert counter(other, "blanco_render_cache_total", result="hit_redis") == 1


def test_a_render_with_a_missing_asset_is_never_cached(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    admin_headers: dict[str, str],
) -> None:
    picture = image_bytes("PNG", (120, 80), "#3366AA")
    asset_id = "sha256:" + hashlib.sha256(picture).hexdigest()
    card = {
        "type": "card",
        "image_asset": asset_id,
        "title": {"text": "Lisbon"},
        "layout": "horizontal",
    }
    api = AdminApi(client, admin_headers)
    assert api.post("/campaigns", json={"id": "daily"}).status_code == 201
    document = block(
        variants=[{"id": "trip", "content": card, "target_url": "https://shop.example/lisbon"}]
    )
    assert api.post("/campaigns/daily/blocks", json=document).status_code == 201
    store_recipient(services, "anna")

    placeholder = open_image(client, services, "anna")
    again = open_image(client, services, "anna")
    assert again == placeholder
    assert counter(client, "blanco_renders_total", block_type="card") == 2  # drawn each time
    assert render_keys(redis_client) == []

    uploaded = api.post(
        "/assets",
        data={"file": (io.BytesIO(picture), "lisbon.png")},
        content_type="multipart/form-data",
    )
    assert uploaded.get_json()["id"] == asset_id
    pictured = open_image(client, services, "anna")
    assert pictured != placeholder  # the image shows as soon as it is uploaded
    assert len(render_keys(redis_client)) == 1  # and that render is cached
    assert open_image(client, services, "anna") == pictured
    assert counter(client, "blanco_renders_total", block_type="card") == 3
