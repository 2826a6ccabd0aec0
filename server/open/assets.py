"""Public URLs of uploaded images, for AMP emails (``amp-img``) and web views.

``GET /a/<asset id>.<ext>`` answers the image's bytes as uploaded, with its own media type (the
extension is cosmetic). Ids are the SHA-256 of the bytes (the ``sha256:`` prefix may be left
out), so an answer never changes: it is cacheable by anyone for a year, ``immutable``, with the
hash as its ETag. An unknown id is a 404 (this is not an email-image route: nothing points at an
unknown id). When Redis is unavailable (or anything else fails) it answers a 1×1 transparent
PNG that nobody may cache: never a 5xx, and never a placeholder stored under the immutable URL.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from models.assets.metadata import EXTENSIONS, Asset, valid_asset_id
from models.storage import keys
from models.storage.batch import Batch
from server.open.answers import LAST_RESORT
from server.open.routes import open_core

log = logging.getLogger(__name__)
bp = Blueprint("asset_files", __name__)

ID_PREFIX = "sha256:"
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_CACHED = "no-store"


def asset_path(asset_id: str, media_type: str) -> str:
    """The public path of an asset: ``/a/<hex>.<ext>``."""
    return f"/a/{asset_id.removeprefix(ID_PREFIX)}.{EXTENSIONS.get(media_type, 'img')}"


def _not_found() -> Response:
    response = Response("no such image\n", status=404, mimetype="text/plain")
    response.headers["Cache-Control"] = NOT_CACHED
    return response


def _unavailable(reason: str) -> Response:
    response = Response(LAST_RESORT.image.body, mimetype=LAST_RESORT.image.media_type)
    response.headers["Cache-Control"] = NOT_CACHED
    response.headers["X-Blanco-Fallback"] = reason
    return response


@bp.get("/a/<asset_id>.<any(png, jpg, jpeg, gif, webp, img):extension>")
def asset_file(asset_id: str, extension: str) -> ResponseReturnValue:
    """An uploaded image by id: its bytes and media type, cacheable for ever."""
    full_id = asset_id if asset_id.startswith(ID_PREFIX) else ID_PREFIX + asset_id
    if not valid_asset_id(full_id):
        return _not_found()
    core = open_core()

    def attempt() -> Response:
        batch = Batch(core.services.redis_bytes, guard=core.breakers)
        meta = batch.get(keys.asset_meta(full_id))  # one hash slot: the asset's
        data = batch.get(keys.asset(full_id))
        replies = batch.execute()
        if not replies[meta] or replies[data] is None:
            return _not_found()
        asset = Asset.model_validate_json(replies[meta])
        response = Response(bytes(replies[data]), mimetype=asset.media_type)
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.set_etag(asset.id.removeprefix(ID_PREFIX))
        response.make_conditional(request)
        return response

    return core.guarded(
        "asset",
        attempt,
        lambda reason: _unavailable("redis" if reason.startswith("redis") else "error"),
    )
