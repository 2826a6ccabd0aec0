"""Public image URLs (``/a/<id>.<ext>``): the uploaded bytes, cacheable for ever, never a 5xx."""

from __future__ import annotations

import io

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from models.assets import Asset
from server.services import Services
from tests.factories import decode_image

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


def test_redis_trouble_answers_an_uncacheable_transparent_image(
    app: Flask, client: FlaskClient, asset: Asset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object) -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(app.extensions["blanco"].assets, "get_content", down)
    response = client.get(f"/a/{hex_of(asset)}.jpg")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Blanco-Fallback"] == "redis"
    assert decode_image(response.data).size == (1, 1)
    assert not app.extensions["blanco.open"].breakers.all_closed
    # while the breaker is open Redis is not asked at all
    monkeypatch.undo()
    assert client.get(f"/a/{hex_of(asset)}.jpg").headers["X-Blanco-Fallback"] == "redis"


def test_an_unexpected_error_is_never_a_server_error(
    app: Flask, client: FlaskClient, asset: Asset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.extensions["blanco"].assets, "get_content", broken)
    response = client.get(f"/a/{hex_of(asset)}.jpg")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Blanco-Fallback"] == "error"
    assert b"boom" not in response.data
