"""Public image URLs (``/a/<id>.<ext>``): the uploaded bytes, cacheable for ever, never a 5xx."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from models.assets.metadata import Asset
from models.storage import keys
from server.services import EXTENSION, Services
from tests.factories import decode_image
from tests.redis_servers import RedisProcess

IMMUTABLE = "public, max-age=31536000, immutable"


def jpeg() -> bytes:
    """A small JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "#0B7A75").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def asset(services: Services) -> Asset:
    """An uploaded JPEG."""
    stored, _ = services.assets.put(jpeg(), "trip.jpg", now=services.clock())
    return stored


def hex_of(asset: Asset) -> str:
    return asset.id.removeprefix("sha256:")


@pytest.mark.parametrize("form", ["{hex}.jpg", "sha256:{hex}.jpg", "{hex}.png", "{hex}.img"])
def test_the_bytes_with_their_own_type_cacheable_for_ever(
    client: FlaskClient, asset: Asset, form: str
) -> None:
    response = client.get("/a/" + form.format(hex=hex_of(asset)))
    assert response.status_code == 200
    assert response.data == jpeg()
    assert response.mimetype == "image/jpeg"  # the extension is cosmetic
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers["ETag"] == f'"{hex_of(asset)}"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_known_etag_answers_not_modified(client: FlaskClient, asset: Asset) -> None:
    url = f"/a/{hex_of(asset)}.jpg"
    response = client.get(url, headers={"If-None-Match": f'"{hex_of(asset)}"'})
    assert response.status_code == 304
    assert response.data == b""
    assert client.head(url).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/a/" + "0" * 64 + ".png",
        "/a/sha256:" + "f" * 64 + ".jpg",
        "/a/not-a-hash.png",
        "/a/" + "0" * 63 + ".png",
        "/a/" + "A" * 64 + ".png",
    ],
)
def test_unknown_or_malformed_ids_are_not_found(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


def test_other_extensions_are_not_routed(client: FlaskClient, asset: Asset) -> None:
    assert client.get(f"/a/{hex_of(asset)}.svg").status_code == 404


@pytest.mark.own_redis
def test_redis_trouble_answers_an_uncacheable_transparent_image(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with RedisProcess(tmp_path / "redis", persistence=True) as own:
        app = make_app(redis_url=own.url, redis_timeout_seconds=0.2, redis_retry_after_seconds=60)
        services: Services = app.extensions[EXTENSION]
        stored, _ = services.assets.put(jpeg(), "trip.jpg", now=services.clock())
        client = app.test_client()
        url = f"/a/{hex_of(stored)}.jpg"
        assert client.get(url).data == jpeg()

        own.stop()
        response = client.get(url)

        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Blanco-Fallback"] == "redis"
        assert decode_image(response.data).size == (1, 1)
        assert not app.extensions["blanco.open"].breakers.all_closed
        # Redis is back with the asset, but while the breaker is open it is not asked at all
        own.restart()
        assert own.client().exists(keys.asset(stored.id))
        assert client.get(url).headers["X-Blanco-Fallback"] == "redis"


def test_an_unexpected_error_is_never_a_server_error(
    app: Flask, client: FlaskClient, asset: Asset, redis_client: redis.Redis
) -> None:
    # a metadata document that is no longer an asset: reading it fails, not Redis
    redis_client.set(keys.asset_meta(asset.id), '{"id": "boom", "media_type": 42}')

    response = client.get(f"/a/{hex_of(asset)}.jpg")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Blanco-Fallback"] == "error"
    assert decode_image(response.data).size == (1, 1)
    assert b"boom" not in response.data
    assert app.extensions["blanco.open"].breakers.all_closed  # bad data is no outage
