"""A countdown's expired image: uploaded by the admin API, shown after the deadline.

End to end through the routes: the deadline is passed by advancing the injected clock, and renders
are cached in the real Redis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from PIL import Image, ImageDraw, ImageSequence
from werkzeug.test import TestResponse

from models.storage import keys
from server.services import Services
from tests.factories import AdminApi, FakeClock, block, decode_image, hex_rgb, store_recipient

RED, BLUE, GREEN = "#CC0000", "#0000CC", "#00AA00"
EXPIRED_BACKGROUND = "#FFEEDD"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def split_image() -> bytes:
    """A PNG, red on the left and blue on the right, with green bands above and below."""
    image = Image.new("RGB", (200, 200), GREEN)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 50, 99, 149), fill=RED)
    draw.rectangle((100, 50, 199, 149), fill=BLUE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def upload(api: AdminApi, data: bytes) -> str:
    """Upload ``data`` as a multipart image; its asset id."""
    response = api.post(
        "/assets",
        data={"file": (io.BytesIO(data), "ended.png"), "name": "Offer ended"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    asset_id: str = response.get_json()["id"]
    return asset_id


def create_countdown(api: AdminApi, deadline: dt.datetime, expired_image: str) -> None:
    """Campaign ``daily`` with block ``hero``: a 300×100 countdown with an expired image."""
    assert api.post("/campaigns", json={"id": "daily"}).status_code == 201
    content: dict[str, Any] = {
        "type": "countdown",
        "deadline": deadline.isoformat(),
        "expired_text": "Sold out",
        "expired_background": EXPIRED_BACKGROUND,
        "expired_image": expired_image,
    }
    timer = {"id": "timer", "content": content, "target_url": "https://shop.example/sale"}
    response = api.post("/campaigns/daily/blocks", json=block(variants=[timer]))
    assert response.status_code == 201, response.get_json()


def open_image(client: FlaskClient, services: Services) -> TestResponse:
    """Anna opens the email: the block's image."""
    token = services.signer.sign("anna")
    response = client.get("/i/daily/hero.gif", query_string={"r": token})
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    return response


def frame_count(body: bytes) -> int:
    """How many frames the GIF has."""
    with Image.open(io.BytesIO(body)) as gif:
        return sum(1 for _ in ImageSequence.Iterator(gif))


def corners(body: bytes) -> list[Any]:
    """The colours of the four corner pixels, clockwise from the top left."""
    image = decode_image(body).convert("RGB")
    right, bottom = image.width - 1, image.height - 1
    return [image.getpixel(xy) for xy in ((0, 0), (right, 0), (right, bottom), (0, bottom))]


def near(pixel: Any, color: str, tolerance: int = 6) -> bool:
    """``pixel`` is within ``tolerance`` per channel of ``color`` (GIF quantising may shift it)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, hex_rgb(color), strict=True))


def cached_renders(redis_client: redis.Redis) -> int:
    """How many renders the Redis render cache holds."""
    return sum(1 for _ in redis_client.scan_iter(keys.render_cache("*"), count=1000))


def test_after_the_deadline_the_uploaded_image_is_one_cached_still(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> None:
    asset_id = upload(api, split_image())
    create_countdown(api, clock.now + dt.timedelta(seconds=10), asset_id)
    store_recipient(services, "anna")

    running = open_image(client, services)
    clock.advance(seconds=30)
    first = open_image(client, services)
    renders = cached_renders(redis_client)
    clock.advance(minutes=5, seconds=7)
    later = open_image(client, services)

    assert frame_count(running.data) > 1
    assert frame_count(first.data) == 1
    assert decode_image(first.data).size == (300, 100)
    top_left, top_right, bottom_right, bottom_left = corners(first.data)
    assert near(top_left, RED)
    assert near(bottom_left, RED)
    assert near(top_right, BLUE)
    assert near(bottom_right, BLUE)
    # Once expired, every later second is the same cached image.
    assert later.headers["ETag"] == first.headers["ETag"]
    assert later.data == first.data
    assert cached_renders(redis_client) == renders


def test_an_image_not_uploaded_yet_falls_back_to_the_text_uncached(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> None:
    data = split_image()
    asset_id = "sha256:" + hashlib.sha256(data).hexdigest()
    create_countdown(api, clock.now - dt.timedelta(minutes=1), asset_id)
    store_recipient(services, "anna")

    missing = open_image(client, services)
    uncached = cached_renders(redis_client)
    assert upload(api, data) == asset_id
    uploaded = open_image(client, services)

    assert frame_count(missing.data) == 1
    assert corners(missing.data) == [hex_rgb(EXPIRED_BACKGROUND)] * 4
    assert uncached == 0  # drawn without its image, so the next open tries again
    assert frame_count(uploaded.data) == 1
    top_left, top_right, _, _ = corners(uploaded.data)
    assert near(top_left, RED)
    assert near(top_right, BLUE)
    assert cached_renders(redis_client) == 1
