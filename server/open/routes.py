"""Routes for email clients and image proxies: images and clicks of blocks and newsletter slots.
They never answer 5xx: every failure ends in a fallback image or URL (``server.open.core``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue

from server.open.answers import ImageAnswer, ImageOptions
from server.open.core import OpenCore
from server.open.slots import SlotServer
from server.urls import KEY_PARAM, SEND_PARAM, TOKEN_PARAM

bp = Blueprint("open_time", __name__)

PERSONAL_CACHE_CONTROL = "no-cache, no-store, max-age=0, private"
GENERIC_CACHE_CONTROL = "no-cache, max-age=0"
CORE = "blanco.open"
SLOTS = "blanco.slots"


def open_core() -> OpenCore:
    """The app's open-time core."""
    found: OpenCore = current_app.extensions[CORE]
    return found


def slot_server() -> SlotServer:
    """The app's newsletter slot service."""
    found: SlotServer = current_app.extensions[SLOTS]
    return found


def image_options() -> ImageOptions:
    """The request's ``dpr`` and ``Accept``."""
    return ImageOptions.from_request(request.args.get("dpr"), request.headers.get("Accept"))


@bp.get("/i/<campaign_id>/<block_id>.<any(png, gif, jpg, webp):extension>")
def image(campaign_id: str, block_id: str, extension: str) -> Response:
    """The block's image for the recipient in ``r``: decided, rendered and recorded now.

    The extension is cosmetic (the content type follows the block and the client's Accept).
    """
    core = open_core()
    answer = core.block_image(
        campaign_id,
        block_id,
        core.identify(request.args.get(TOKEN_PARAM), request.args.get(KEY_PARAM)),
        core.classify_image_request(
            request.method, dict(request.headers.items()), request.remote_addr
        ),
        core.services.clock(),
        options=image_options(),
        send_id=request.args.get(SEND_PARAM),
    )
    return image_response(answer)


def image_response(answer: ImageAnswer) -> Response:
    """An image answer as an HTTP response: kept out of shared caches when personal."""
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


def _redirect(url: str) -> ResponseReturnValue:
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/c/<campaign_id>/<block_id>")
def click(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Redirect to what this recipient's open showed (or what they would be shown now)."""
    core = open_core()
    url = core.block_click(
        campaign_id,
        block_id,
        core.identify(request.args.get(TOKEN_PARAM), request.args.get(KEY_PARAM)),
        request.method,
        dict(request.headers.items()),
        request.args.get(SEND_PARAM),
    )
    return _redirect(url)


@bp.get("/s/<campaign_id>/<int:slot>.<any(png, gif, jpg, webp):extension>")
def slot_image(campaign_id: str, slot: int, extension: str) -> Response:
    """Newsletter slot ``slot`` for the recipient in ``r`` and the send in ``s``: the item at
    that rank of the recipient's ranking for the send (ranked once, shared by all slots)."""
    core = open_core()
    answer = slot_server().image(
        campaign_id,
        slot,
        core.identify(request.args.get(TOKEN_PARAM), request.args.get(KEY_PARAM)),
        request.args.get(SEND_PARAM),
        core.classify_image_request(
            request.method, dict(request.headers.items()), request.remote_addr
        ),
        core.services.clock(),
        image_options(),
    )
    return image_response(answer)


@bp.get("/s/<campaign_id>/<int:slot>")
def slot_click(campaign_id: str, slot: int) -> ResponseReturnValue:
    """Redirect to the item this recipient's email shows in the slot (its fallback if none)."""
    core = open_core()
    url = slot_server().click(
        campaign_id,
        slot,
        core.identify(request.args.get(TOKEN_PARAM), request.args.get(KEY_PARAM)),
        request.args.get(SEND_PARAM),
        request.method,
        dict(request.headers.items()),
    )
    return _redirect(url)


@bp.get("/gone")
def gone() -> tuple[str, int, dict[str, str]]:
    """Neutral landing page for links whose campaign no longer exists."""
    return render_template("gone.html"), 200, {"Cache-Control": "no-store"}
