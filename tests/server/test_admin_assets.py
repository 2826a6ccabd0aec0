"""Admin API v1: uploading images (multipart and base64), reading, listing, deleting."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from models.storage import keys
from tests.factories import AdminApi, decode_image, error_pointers, problem
from tests.sample_images import animated_gif, image_bytes, noise_bytes, png_declaring

FORMATS = [
    ("PNG", "image/png"),
    ("JPEG", "image/jpeg"),
    ("GIF", "image/gif"),
    ("WEBP", "image/webp"),
]


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def upload(api: AdminApi, data: bytes, filename: str = "image.bin", **form: str) -> TestResponse:
    """POST ``data`` as the multipart ``file`` part."""
    return api.post(
        "/assets",
        data={"file": (io.BytesIO(data), filename), **form},
        content_type="multipart/form-data",
    )


def upload_json(api: AdminApi, data: bytes, **fields: Any) -> TestResponse:
    """POST ``data`` base64-encoded in a JSON body."""
    return api.post("/assets", json={"data_base64": base64.b64encode(data).decode(), **fields})


def sha(data: bytes) -> str:
    """The asset id of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_assets(redis_client: redis.Redis) -> list[str]:
    """Every key in Redis but the API keys' and the configuration counter (scanned; asset
    bytes are not text, so not read)."""
    ignored = {keys.API_KEYS, keys.CONFIG_VERSION}
    return sorted(k for k in redis_client.scan_iter("*", count=1000) if k not in ignored)


@pytest.mark.parametrize(("fmt", "media_type"), FORMATS)
def test_multipart_upload(api: AdminApi, fmt: str, media_type: str) -> None:
    data = image_bytes(fmt, (40, 30))
    response = upload(api, data, "hero.whatever", name="Spring hero")
    assert response.status_code == 201, response.get_json()
    asset = response.get_json()
    assert asset["id"] == sha(data)
    assert asset["media_type"] == media_type
    assert (asset["width"], asset["height"], asset["frames"]) == (40, 30, 1)
    assert asset["bytes"] == len(data)
    assert asset["name"] == "Spring hero"
    assert asset["created_at"] == "2026-11-23T09:30:00Z"
    assert response.headers["Location"] == f"/api/v1/assets/{asset['id']}"


@pytest.mark.parametrize(("fmt", "media_type"), FORMATS)
def test_base64_upload(api: AdminApi, fmt: str, media_type: str) -> None:
    data = image_bytes(fmt)
    response = upload_json(api, data, name="banner")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["id"] == sha(data)
    assert response.get_json()["media_type"] == media_type
    assert api.get(f"/assets/{sha(data)}/content").data == data


def test_base64_may_wrap_and_carry_a_data_url_prefix(api: AdminApi) -> None:
    data = image_bytes("PNG")
    encoded = base64.encodebytes(data).decode()  # wrapped at 76 characters
    response = api.post("/assets", json={"data_base64": "data:image/png;base64," + encoded})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["id"] == sha(data)


def test_type_comes_from_content_not_file_name(api: AdminApi) -> None:
    data = image_bytes("PNG")
    response = api.post(
        "/assets",
        data={"file": (io.BytesIO(data), "photo.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert response.get_json()["media_type"] == "image/png"
    assert response.get_json()["name"] == "photo.jpg"


def test_name_defaults_to_the_file_name_without_its_folder(api: AdminApi) -> None:
    response = upload(api, image_bytes("GIF"), "photos/2026/banner.gif")
    assert response.get_json()["name"] == "banner.gif"


def test_animated_gif(api: AdminApi) -> None:
    response = upload(api, animated_gif(frames=4))
    assert response.status_code == 201
    assert response.get_json()["frames"] == 4


def test_same_bytes_twice_same_id_one_copy(api: AdminApi, redis_client: redis.Redis) -> None:
    data = image_bytes("WEBP")
    first = upload(api, data, name="first")
    again = upload_json(api, data, name="second")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()  # first name kept
    asset_id = first.get_json()["id"]
    assert stored_assets(redis_client) == sorted(
        [keys.ASSET_INDEX, keys.asset(asset_id), keys.asset_meta(asset_id)]
    )
    assert [a["id"] for a in api.get("/assets").get_json()] == [asset_id]


BAD_UPLOADS: dict[str, tuple[bytes, str]] = {
    "not an image": (b"%PDF-1.7 not an image at all", "not an image Blanco recognises"),
    "truncated": (noise_bytes("PNG")[:3000], "damaged or truncated"),
    "bmp": (image_bytes("BMP"), "is BMP, not an allowed type: PNG, JPEG, GIF or WebP"),
    "tiff": (image_bytes("TIFF"), "is TIFF, not an allowed type"),
    "bomb": (png_declaring(100_000, 100_000), "decompression bomb"),
    "too many pixels": (png_declaring(6_000, 5_000), "more than the 25000000 pixels allowed"),
    "empty": (b"", "is empty"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
@pytest.mark.parametrize("how", ["multipart", "json"])
def test_bad_uploads_are_422_and_store_nothing(
    api: AdminApi, redis_client: redis.Redis, case: str, how: str
) -> None:
    data, reason = BAD_UPLOADS[case]
    response = upload(api, data, "x.png") if how == "multipart" else upload_json(api, data)
    body = problem(response, 422)
    field = "file" if how == "multipart" else "data_base64"
    assert error_pointers(response) == [(f"/{field}", field)]
    assert reason in body["errors"][0]["detail"]
    assert body["detail"].startswith("the image was refused: it ")
    assert stored_assets(redis_client) == []


def test_over_the_byte_limit(make_app: Callable[..., Flask]) -> None:
    data = noise_bytes("PNG", (64, 64))
    app = make_app(asset_max_bytes=len(data) - 1)
    small = AdminApi(app.test_client(), _admin_headers(app))
    for response in (upload(small, data), upload_json(small, data)):
        assert f"is larger than the {len(data) - 1} bytes allowed" in str(
            problem(response, 422)["errors"]
        )
    assert upload(small, image_bytes("PNG", (4, 4))).status_code == 201


def test_configured_pixel_limit(make_app: Callable[..., Flask], redis_client: redis.Redis) -> None:
    app = make_app(asset_max_pixels=999)
    small = AdminApi(app.test_client(), _admin_headers(app))
    response = upload(small, image_bytes("PNG", (40, 25)))
    assert "more than the 999 pixels allowed (40×25 per frame)" in str(problem(response, 422))
    assert stored_assets(redis_client) == []


def _admin_headers(app: Flask) -> dict[str, str]:
    _, key = app.extensions["blanco"].api_keys.create("small", ["admin"])
    return {"Authorization": f"Bearer {key}"}


def test_urls_are_never_fetched(api: AdminApi, redis_client: redis.Redis) -> None:
    response = api.post("/assets", json={"url": "http://169.254.169.254/latest/meta-data"})
    body = problem(response, 422)
    assert error_pointers(response) == [("/url", "url")]
    assert "does not fetch" in body["detail"]
    assert "data_base64" in body["errors"][0]["detail"]
    with_data = upload_json(api, image_bytes("PNG"), url="http://example.com/x.png")
    assert error_pointers(with_data) == [("/url", "url")]
    assert stored_assets(redis_client) == []


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"data_base64": "!!!not base64!!!"}, "/data_base64"),
        ({"data_base64": 42}, "/data_base64"),
        ({}, "/data_base64"),
        ({"data_base64": "aGk=", "name": ""}, "/name"),
        ({"data_base64": "aGk=", "name": "x" * 201}, "/name"),
        ({"data_base64": "aGk=", "colour": "red"}, "/colour"),
    ],
)
def test_bad_json_bodies(
    api: AdminApi, redis_client: redis.Redis, payload: dict[str, Any], pointer: str
) -> None:
    response = api.post("/assets", json=payload)
    assert [p for p, _ in error_pointers(response)] == [pointer]
    assert stored_assets(redis_client) == []


def test_multipart_without_a_file_part(api: AdminApi) -> None:
    response = api.post("/assets", data={"name": "x"}, content_type="multipart/form-data")
    assert error_pointers(response) == [("/file", "file")]


def test_multipart_bad_name(api: AdminApi, redis_client: redis.Redis) -> None:
    response = upload(api, image_bytes("PNG"), name="tab\there")
    assert error_pointers(response) == [("/name", "name")]
    assert stored_assets(redis_client) == []


def test_other_body_types_are_415(api: AdminApi) -> None:
    response = api.post("/assets", data=image_bytes("PNG"), content_type="image/png")
    assert "multipart/form-data" in problem(response, 415)["detail"]


def test_get_metadata_and_content(api: AdminApi) -> None:
    data = image_bytes("JPEG", (33, 22))
    asset = upload(api, data).get_json()
    assert api.get(f"/assets/{asset['id']}").get_json() == asset
    content = api.get(f"/assets/{asset['id']}/content")
    assert content.status_code == 200
    assert content.mimetype == "image/jpeg"
    assert content.data == data
    assert decode_image(content.data).size == (33, 22)
    assert content.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in content.headers["Cache-Control"]
    etag = content.headers["ETag"]
    cached = api.get(f"/assets/{asset['id']}/content", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.data == b""


def test_colon_in_the_id_may_be_percent_encoded(api: AdminApi) -> None:
    asset = upload(api, image_bytes("PNG")).get_json()
    encoded = asset["id"].replace(":", "%3A")
    assert api.get(f"/assets/{encoded}").get_json() == asset


def test_unknown_and_malformed_ids(api: AdminApi) -> None:
    unknown = "sha256:" + "0" * 64
    for path in (f"/assets/{unknown}", f"/assets/{unknown}/content"):
        problem(api.get(path), 404)
    problem(api.delete(f"/assets/{unknown}"), 404)
    for path in ("/assets/sha256:xyz", "/assets/abc/content"):
        assert error_pointers(api.get(path)) == [("/asset_id", "asset_id")]
    assert error_pointers(api.delete("/assets/nope")) == [("/asset_id", "asset_id")]


def test_list_oldest_first(api: AdminApi, app: Flask) -> None:
    assert api.get("/assets").get_json() == []
    first = upload(api, image_bytes("PNG", color="#000000")).get_json()
    app.extensions["blanco"].clock.advance(minutes=5)
    second = upload(api, image_bytes("PNG", color="#FFFFFF")).get_json()
    assert api.get("/assets").get_json() == [first, second]


def test_delete(api: AdminApi, redis_client: redis.Redis) -> None:
    kept = upload(api, image_bytes("GIF")).get_json()
    doomed = upload(api, image_bytes("PNG")).get_json()
    response = api.delete(f"/assets/{doomed['id']}")
    assert response.status_code == 204
    assert response.data == b""
    problem(api.get(f"/assets/{doomed['id']}"), 404)
    problem(api.get(f"/assets/{doomed['id']}/content"), 404)
    assert api.get("/assets").get_json() == [kept]
    assert stored_assets(redis_client) == sorted(
        [keys.ASSET_INDEX, keys.asset(kept["id"]), keys.asset_meta(kept["id"])]
    )


def test_assets_need_the_admin_scope(
    client: FlaskClient, ingest_headers: dict[str, str], redis_client: redis.Redis
) -> None:
    ingest = AdminApi(client, ingest_headers)
    problem(upload(ingest, image_bytes("PNG")), 403)
    problem(ingest.get("/assets"), 403)
    problem(AdminApi(client, {}).get("/assets"), 401)
    assert stored_assets(redis_client) == []


def test_openapi_documents_both_upload_bodies(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    post = document["paths"]["/api/v1/assets"]["post"]
    content = post["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/AssetUpload"}
    multipart = content["multipart/form-data"]["schema"]
    assert multipart["required"] == ["file"]
    assert multipart["properties"]["file"]["format"] == "binary"
    upload_schema = document["components"]["schemas"]["AssetUpload"]
    assert set(upload_schema["properties"]) == {"name", "data_base64"}  # no url
    assert {"201", "413", "415", "422"} <= set(post["responses"])
    asset_schema = document["components"]["schemas"]["Asset"]
    assert {"id", "media_type", "width", "height", "bytes", "created_at", "name"} <= set(
        asset_schema["properties"]
    )
    content_op = document["paths"]["/api/v1/assets/{asset_id}/content"]["get"]
    assert content_op["responses"]["200"]["content"] == {
        "image/*": {"schema": {"type": "string", "format": "binary"}}
    }
