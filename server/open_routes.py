"""Routes for email clients and image proxies: images and clicks. They never answer 5xx."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue

from server.open_time import ImageOptions, OpenTime
from server.urls import TOKEN_PARAM

bp = Blueprint("open_time", __name__)

PERSONAL_CACHE_CONTROL = "no-cache, no-store, max-age=0, private"
GENERIC_CACHE_CONTROL = "no-cache, max-age=0"


def open_time() -> OpenTime:
    """The app's open-time service."""
    service: OpenTime = current_app.extensions["blanco.open_time"]
    return service


@bp.get("/i/<campaign_id>/<block_id>.<any(png, gif, jpg, webp):extension>")
def image(campaign_id: str, block_id: str, extension: str) -> Response:
    """The block's image for the recipient in ``r``: decided, rendered and recorded now.

    The extension is cosmetic (the content type follows the block and the client's Accept).
    """
    answer = open_time().image(
        campaign_id,
        block_id,
        request.args.get(TOKEN_PARAM),
        request.method,
        dict(request.headers.items()),
        request.remote_addr,
        ImageOptions.from_request(request.args.get("dpr"), request.headers.get("Accept")),
    )
    response = Response(answer.image.body, mimetype=answer.image.media_type)
    response.headers["Cache-Control"] = (
        PERSONAL_CACHE_CONTROL if answer.personalised else GENERIC_CACHE_CONTROL
    )
    response.headers["ETag"] = answer.etag
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept"
    if answer.fallback_reason:
        response.headers["X-Blanco-Fallback"] = answer.fallback_reason
    return response


@bp.get("/c/<campaign_id>/<block_id>")
def click(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Redirect to what this recipient's open showed (or what they would be shown now)."""
    url = open_time().click(
        campaign_id,
        block_id,
        request.args.get(TOKEN_PARAM),
        request.method,
        dict(request.headers.items()),
    )
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/gone")
def gone() -> tuple[str, int, dict[str, str]]:
    """Neutral landing page for links whose campaign no longer exists."""
    return render_template("gone.html"), 200, {"Cache-Control": "no-store"}
