"""AMP for Email: the JSON an AMP newsletter's ``amp-list`` fetches at open time.

``GET /amp/<campaign>/items.json?r=<token>&s=<send>`` answers ``{"items": [...]}``, one item
per newsletter slot, from ``SlotServer.page``: the same stored ranking the slot images use,
so the AMP part and the image slots of one email never disagree. Each item's ``url`` is the
slot's click URL (with ``r`` and ``s``), so the click is tracked and goes where the slot shows.
An item's ``image`` is the public URL (``/a/<id>.<ext>``) of its picture (the item's
``image_asset``, else its card layout's), with the picture's ``width`` and ``height``; prices are
written in the card layout's locale and currency (the card defaults for other layouts). A slot
showing its fallback has ``"fallback": true``, the fallback's alt text (else the slot's) as
its title and no picture.

CORS is AMP for Email's own (amp.dev, "CORS in AMP for Email"), checked before anything is read:

* version 2: the request carries ``AMP-Email-Sender: <address>``; an allowed sender gets
  ``AMP-Email-Allow-Sender: <address>`` back. It takes precedence over version 1.
* version 1 (deprecated): ``Origin`` plus the ``__amp_source_origin`` query parameter. The
  ``Origin`` must be an email client's or AMP cache's (``AMP_CLIENT_ORIGINS``: Gmail, the Gmail
  and amp.dev playgrounds, ``https://*.ampproject.org``) or an https origin on an allowed
  sender's domain (``https://shop.example`` and its subdomains for ``news@shop.example`` or
  ``@shop.example``). An allowed sender from an allowed origin gets
  ``Access-Control-Allow-Origin: <Origin>``, ``AMP-Access-Control-Allow-Source-Origin:
  <sender>`` and ``Access-Control-Expose-Headers: AMP-Access-Control-Allow-Source-Origin``;
  never ``Access-Control-Allow-Credentials`` (AMP for Email asks for none, email proxies send no
  cookies, and the recipient is named by the signed token).
* anything else (no sender, a sender not in ``BLANCO_AMP_ALLOWED_SENDERS``, an ``Origin`` that
  is neither of the above) is refused as the spec says ("reject the request"): ``403`` with
  ``{"items": []}``, no allow header, and nothing read, ranked or recorded.

CORS only tells the email client's proxy which senders may read the answer; what a reader can
see is decided by the signed token, exactly as for the slot images: a missing or bad token gets
the generic ranking and no personal field.

The route never redirects and never answers 5xx: on any failure (Redis down, an unknown
campaign, a bug) an allowed request gets ``200`` with ``{"items": []}``, for which Blanco's AMP
template shows the slots as images (as it does when the fetch itself fails).

An answer to a verified recipient's GET records one ``open`` per slot under the client ``amp``
with kind ``proxied_human`` (email clients fetch AMP JSON through their proxy when the reader
opens the email; Apple Mail, which prefetches images, does not render AMP), attributed to the
send, like a slot image fetch. HEAD requests record nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flask import Blueprint, Response, json, request

from models.assets.metadata import Asset
from models.newsletter.sends import valid_send_id
from server.open.routes import PERSONAL_CACHE_CONTROL, slot_server
from server.open.slot_views import click_query, pictures, slot_item
from server.open.slots import SlotPage, SlotServer
from server.tokens import Identity
from server.urls import SEND_PARAM, TOKEN_PARAM, slot_click_path

log = logging.getLogger(__name__)
bp = Blueprint("amp", __name__)

AMP_CLIENT = "amp"
"""The client name AMP opens are recorded under (the route, not the headers, tells them)."""
AMP_OPEN_KIND = "proxied_human"
SENDER_HEADER = "AMP-Email-Sender"
SOURCE_ORIGIN_PARAM = "__amp_source_origin"
MAX_SENDER_LENGTH = 254
AMP_CLIENT_ORIGINS = frozenset(
    {
        "https://mail.google.com",  # Gmail's proxy
        "https://amp.gmail.dev",  # Gmail's AMP for Email playground
        "https://playground.amp.dev",  # the AMP project's playground
    }
)
"""Origins of the email clients that send CORS version 1 requests (with ``Origin``)."""
AMP_CACHE_SUFFIXES = (".ampproject.org",)
"""Host suffixes of the AMP caches (``https://<anything>.cdn.ampproject.org``)."""
_ORIGIN = re.compile(r"https://(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)+)")
_SENDER = re.compile(r"[^@\s,]+@[^@\s,]+")


def items_path(campaign_id: str) -> str:
    """Path of a newsletter's AMP items route."""
    return f"/amp/{campaign_id}/items.json"


# CORS


def sender_allowed(sender: str, allowed: Sequence[str]) -> bool:
    """Whether ``sender`` is one of the allowed addresses or in one of the ``@domain``s."""
    if len(sender) > MAX_SENDER_LENGTH or not _SENDER.fullmatch(sender):
        return False
    address = sender.lower()
    domain = address[address.rindex("@") :]
    return address in allowed or domain in allowed


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Whether a version 1 ``Origin`` is an AMP email client's or cache's, or an https origin
    on an allowed sender's domain (or a subdomain of it)."""
    if origin in AMP_CLIENT_ORIGINS:
        return True
    found = _ORIGIN.fullmatch(origin)
    if found is None:
        return False
    host = found["host"]
    if host.endswith(AMP_CACHE_SUFFIXES):
        return True
    domains = {entry.rpartition("@")[2] for entry in allowed}
    return any(host == domain or host.endswith(f".{domain}") for domain in domains)


class Lookup(Protocol):
    """What CORS reads from request headers and query arguments (both case rules kept)."""

    def get(self, key: str, /) -> str | None:
        """The value under ``key``, if any."""


def cors_headers(headers: Lookup, args: Lookup, allowed: Sequence[str]) -> dict[str, str] | None:
    """The AMP for Email CORS headers to answer with, or None when the request is refused."""
    sender = headers.get(SENDER_HEADER)
    if sender is not None:
        if not sender_allowed(sender, allowed):
            return None
        return {"AMP-Email-Allow-Sender": sender}
    origin = headers.get("Origin")
    source = args.get(SOURCE_ORIGIN_PARAM)
    if origin is None or source is None or not origin_allowed(origin, allowed):
        return None
    if not sender_allowed(source, allowed):
        return None
    return {
        "Access-Control-Allow-Origin": origin,
        "AMP-Access-Control-Allow-Source-Origin": source,
        "Access-Control-Expose-Headers": "AMP-Access-Control-Allow-Source-Origin",
    }


def _json(body: dict[str, Any], status: int, extra: Mapping[str, str]) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = PERSONAL_CACHE_CONTROL
    response.headers["Vary"] = f"Origin, {SENDER_HEADER}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.update(extra)
    return response


@bp.get("/amp/<campaign_id>/items.json")
def items(campaign_id: str) -> Response:
    """The recipient's newsletter items for the send, as ``amp-list`` JSON; never 5xx."""
    slots = slot_server()
    allowed = cors_headers(request.headers, request.args, slots.services.settings.amp_senders)
    if allowed is None:
        return _json({"items": []}, 403, {})
    try:
        found = amp_items(
            slots,
            campaign_id,
            request.args.get(TOKEN_PARAM),
            request.args.get(SEND_PARAM),
            record=request.method == "GET",
        )
    except Exception:  # never a 5xx: the AMP email shows what it has for an empty list
        log.exception("AMP items failed; answering an empty list")
        found = []
    return _json({"items": found}, 200, allowed)


# items


def amp_items(
    slots: SlotServer,
    campaign_id: str,
    token: str | None,
    send_id: str | None,
    *,
    record: bool = True,
) -> list[dict[str, Any]]:
    """One ``amp-list`` item per slot for the token's recipient and the send; [] when the
    campaign has no newsletter or Redis fails. Records the opens when ``record``."""
    services = slots.services
    core = slots.core
    send_id = send_id if send_id and valid_send_id(send_id) else None
    now = services.clock()

    def attempt() -> tuple[SlotPage, dict[str, Asset]] | None:
        opened = slots.load(campaign_id, send_id, Identity(services.signer.verify(token)), now)
        page = slots.page(opened, now)
        return (page, pictures(core.config, page.contents)) if page is not None else None

    found = core.guarded("amp", attempt, lambda reason: None)
    if found is None:
        return []
    page, assets = found
    recipient_id = page.recipient_id  # None for an erased recipient: record nothing
    query = click_query(token if recipient_id is not None else None, send_id)
    public = services.settings.public_url
    max_length = services.settings.max_text_length
    answer = [
        slot_item(
            number,
            content,
            assets,
            f"{public}{slot_click_path(campaign_id, number)}{query}",
            public,
            max_length,
        )
        for number, content in enumerate(page.contents, start=1)
    ]
    if record and recipient_id is not None:
        for number, content in enumerate(page.contents, start=1):
            core.record(
                recipient_id,
                slots.decision(page.newsletter, number, content, AMP_CLIENT, now),
                "open",
                AMP_CLIENT,
                AMP_OPEN_KIND,
                store_decision=False,
                send=page.send_id,
            )
    return answer
