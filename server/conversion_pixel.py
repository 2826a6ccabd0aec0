"""The shop's side of conversions: a script for its pages and a pixel for its thank-you page.

``GET /cv.js`` keeps the attribution token of the email click that brought a visitor (the
``bl_click`` parameter of the landing page) in a first-party cookie of the shop, and offers
``blanco.conversion({...})``, which loads the pixel with the order and the token.

``GET /cv.gif?o=<order id>&a=<amount>&c=<currency>&t=<token>[&i=<item>,<item>]`` records the
order as a conversion of the token's recipient. Without ``t``, the ``blanco_click`` cookie is
read (set by the click redirect when Blanco runs on the shop's domain,
``BLANCO_CLICK_COOKIE_DOMAIN``). The pixel never names a recipient: an order that comes
without a genuine, unexpired token is ignored, and one token reports at most
``BLANCO_PIXEL_ORDERS_PER_CLICK`` distinct orders. It always answers a 1×1 GIF that nobody caches
(never an error a shopper would see); ``X-Blanco-Conversion`` says what happened, for whoever
sets it up.
"""

from __future__ import annotations

import base64
import logging

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from models.conversions.click_refs import claim_keyless_order
from models.conversions.inputs import ConversionIn
from models.errors import RowsRefused
from server.open.routes import CLICK_COOKIE
from server.services import services

log = logging.getLogger(__name__)
bp = Blueprint("conversion_pixel", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1×1 transparent GIF."""
MAX_ITEMS = 100


def _pixel(outcome: str) -> Response:
    response = Response(PIXEL, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Blanco-Conversion"] = outcome
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/cv.gif")
def conversion_pixel() -> ResponseReturnValue:
    """Record the order the query describes for the recipient of its click token."""
    args = request.args
    token = args.get("t") or request.cookies.get(CLICK_COOKIE)
    if not token:
        return _pixel("ignored: no attribution token")
    items = [i for i in args.get("i", "").split(",") if i][:MAX_ITEMS]
    try:
        conversion = ConversionIn.model_validate(
            {
                "order_id": args.get("o", ""),
                "amount": args.get("a", ""),
                "currency": args.get("c", ""),
                "items": [{"id": item} for item in items],
                "click": token,
            }
        )
    except ValidationError as invalid:
        fields = sorted({str(e["loc"][0]) for e in invalid.errors(include_url=False)})
        return _pixel(f"ignored: invalid {', '.join(fields)}")
    blanco = services()
    ref = blanco.signer.verify_click(token)
    if ref is None:
        return _pixel("ignored: not a genuine attribution token")
    settings = blanco.settings
    order_name = blanco.signer.order_key(ref.click_id, conversion.order_id)
    try:
        if not claim_keyless_order(
            blanco.redis,
            ref,
            order_name,
            settings.pixel_orders_per_click,
            round(settings.attribution_click_days * 86400),
        ):
            return _pixel("ignored: this click's token has reported as many orders as it may")
        blanco.conversions.record_incoming([conversion], [ref], blanco.clock(), replace=False)
    except RowsRefused as refused:
        return _pixel(f"ignored: {refused.refusals[0].message}")
    except Exception:  # a shopper's page never sees an error
        log.exception("conversion pixel failed")
        return _pixel("ignored: not recorded (server error)")
    return _pixel("recorded")


@bp.get("/cv.js")
def conversion_script() -> ResponseReturnValue:
    """The shop's script (cacheable for an hour: it changes only with the settings)."""
    settings = services().settings
    body = render_template(
        "conversions/conversion.js",
        param=settings.click_token_param or "bl_click",
        cookie=CLICK_COOKIE,
        max_age=round(settings.attribution_click_days * 86400),
        pixel=f"{settings.public_url}/cv.gif",
    )
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
