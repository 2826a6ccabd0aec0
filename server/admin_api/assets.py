"""Admin API: uploaded image assets (PNG, JPEG, GIF, WebP) that renderers draw by id.

Images are uploaded, never fetched: Blanco does not download from URLs (no SSRF). Asset ids
contain a colon (``sha256:<hex>``), which is valid in a URL path: ``/assets/sha256:3f2a…``.
"""

from __future__ import annotations

import base64
import binascii
import ntpath
import re
from typing import Any

from flask import Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from models.assets.metadata import MAX_NAME_LENGTH, Asset, AssetName, valid_asset_id
from models.errors import FieldError, InvalidInput, NotFound, UnsupportedMediaType, field_errors
from server.admin_api.registry import api
from server.api_operations import parse_json_body, request_json
from server.services import services

TAG = "assets"
ASSET = "/assets/<asset_id>"
MULTIPART = "multipart/form-data"
DATA_URL_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)
CONTENT_CACHE_CONTROL = "private, max-age=31536000, immutable"  # the id is the content's hash
MULTIPART_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The image file: PNG, JPEG, GIF or WebP (recognised by content).",
        },
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_LENGTH,
            "description": "A label; default: the file name.",
        },
    },
}
_NAME = TypeAdapter(AssetName)


class AssetUpload(BaseModel):
    """An image uploaded as JSON. There is no ``url``: Blanco never fetches images."""

    model_config = ConfigDict(extra="forbid")

    name: AssetName | None = None
    data_base64: str = Field(
        description="The image file, base64-encoded (RFC 4648; whitespace and a `data:…;base64,` "
        "prefix are ignored). PNG, JPEG, GIF or WebP, recognised by content.",
    )


def _asset_response(asset: Asset, created: bool) -> ResponseReturnValue:
    response = jsonify(asset.model_dump(mode="json"))
    response.status_code = 201 if created else 200
    response.headers["Location"] = url_for(".get_asset_get", asset_id=asset.id)
    return response


def _checked(asset_id: str) -> str:
    if not valid_asset_id(asset_id):
        raise InvalidInput(
            "invalid asset id", [FieldError(("asset_id",), "must be sha256: and 64 hex digits")]
        )
    return asset_id


def _multipart_upload() -> tuple[bytes, str | None, str]:
    """(bytes, name, field) of a multipart upload."""
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput(
            "send the image as a multipart part named `file`",
            [FieldError(("file",), "missing; add a file part named `file`")],
        )
    # Read one byte past the limit: enough to refuse an oversized file without reading it all.
    data = upload.stream.read(services().assets.limits.max_bytes + 1)
    name: str | None = None
    if (given := request.form.get("name")) is not None:
        try:
            name = _NAME.validate_python(given)
        except ValidationError as exc:
            raise InvalidInput(
                "the name is not valid",
                [FieldError(("name",), e.message) for e in field_errors(exc, given)],
            ) from None
    elif upload.filename:
        name = ntpath.basename(upload.filename).strip()[:MAX_NAME_LENGTH] or None
    return data, name, "file"


def _json_upload() -> tuple[bytes, str | None, str]:
    """(bytes, name, field) of a JSON upload."""
    data = request_json()
    if isinstance(data, dict) and "url" in data:
        raise InvalidInput(
            "Blanco does not fetch images from URLs; upload the image itself",
            [
                FieldError(
                    ("url",),
                    "not supported: send the bytes as `data_base64`, or as a multipart `file`",
                )
            ],
        )
    body = parse_json_body(AssetUpload, data)
    text = DATA_URL_PREFIX.sub("", "".join(body.data_base64.split()), count=1)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "the image is not valid base64",
            [FieldError(("data_base64",), "is not valid base64 (RFC 4648, standard alphabet)")],
        ) from None
    return decoded, body.name, "data_base64"


@api.operation(
    "POST",
    "/assets",
    summary="Upload an image (multipart `file`, or JSON with base64 data; never a URL)",
    tag=TAG,
    body=AssetUpload,
    other_bodies={MULTIPART: MULTIPART_BODY},
    response=Asset,
    status=201,
    other_statuses={200: "The same bytes were uploaded before: that asset"},
    errors=(413, 415, 422),
)
def upload_asset() -> ResponseReturnValue:
    """Store an image; 201 when new, 200 when the same bytes were already uploaded."""
    if request.mimetype == MULTIPART:
        data, name, field = _multipart_upload()
    elif request.is_json:
        data, name, field = _json_upload()
    else:
        raise UnsupportedMediaType(
            "send the image as multipart/form-data (part `file`) or as application/json "
            "with `data_base64`"
        )
    store = services().assets
    asset, created = store.put(data, name, field=field, now=services().clock())
    return _asset_response(asset, created)


@api.operation(
    "GET", "/assets", summary="List uploaded images", tag=TAG, response=Asset, response_list=True
)
def list_assets() -> ResponseReturnValue:
    """Every asset's metadata, oldest first."""
    return jsonify([a.model_dump(mode="json") for a in services().assets.list()])


@api.operation(
    "GET", ASSET, summary="Get an image's metadata", tag=TAG, response=Asset, errors=(404, 422)
)
def get_asset(asset_id: str) -> ResponseReturnValue:
    """One asset's metadata."""
    return jsonify(services().assets.require(_checked(asset_id)).model_dump(mode="json"))


@api.operation(
    "GET",
    f"{ASSET}/content",
    summary="Get an image's bytes, as uploaded",
    tag=TAG,
    response_media_type="image/*",
    errors=(404, 422),
)
def get_asset_content(asset_id: str) -> ResponseReturnValue:
    """The image with its media type; cacheable for ever, since the id is its hash."""
    found = services().assets.get_content(_checked(asset_id))
    if found is None:
        raise NotFound(f"no asset {asset_id!r}")
    asset, data = found
    response = Response(data, mimetype=asset.media_type)
    response.headers["Cache-Control"] = CONTENT_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(asset.id)
    return response.make_conditional(request)


@api.operation("DELETE", ASSET, summary="Delete an image", tag=TAG, status=204, errors=(404, 422))
def delete_asset(asset_id: str) -> ResponseReturnValue:
    """Delete an asset (blocks that name it are not checked; they draw without it)."""
    services().assets.delete(_checked(asset_id))
    return Response(status=204)
