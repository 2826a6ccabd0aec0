"""The demo's newsletter page: today's blank newsletter, filled for every demo recipient."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template

from server.demo.data import BLOCK_ID, CAMPAIGN_ID, DEMO_RECIPIENTS
from server.demo.newsletter import SLOTS
from server.open.webview import web_view_url
from server.services import services
from server.urls import SEND_PARAM, click_url, image_url, slot_click_path, slot_image_path

bp = Blueprint("demo", __name__)


@dataclass(frozen=True)
class Pair:
    """An image and the link around it."""

    image: str
    link: str


@dataclass(frozen=True)
class Inbox:
    """One recipient's copy of today's email (``received`` False: not in the audience)."""

    recipient_id: str
    name: str
    received: bool
    hero: Pair
    slots: list[Pair]
    web_view: str


@bp.get("/demo")
def newsletter_page() -> tuple[str, int, dict[str, str]]:
    """Today's newsletter as each demo recipient's email client would show it."""
    svc = services()
    base = svc.settings.public_url
    sends = svc.sends.recent(CAMPAIGN_ID, limit=1)
    send_id = sends[0].id if sends else ""
    inboxes = []
    for rid, attributes, _ in DEMO_RECIPIENTS:
        token = svc.signer.sign(rid)
        query = f"?r={token}&{SEND_PARAM}={send_id}"
        inboxes.append(
            Inbox(
                recipient_id=rid,
                name=str(attributes.get("first_name", rid)),
                received=bool(send_id) and svc.sends.was_sent_to(CAMPAIGN_ID, send_id, rid),
                hero=Pair(
                    image_url(base, CAMPAIGN_ID, BLOCK_ID, token),
                    click_url(base, CAMPAIGN_ID, BLOCK_ID, token),
                ),
                slots=[
                    Pair(
                        f"{base}{slot_image_path(CAMPAIGN_ID, slot)}{query}&dpr=2",
                        f"{base}{slot_click_path(CAMPAIGN_ID, slot)}{query}",
                    )
                    for slot in range(1, SLOTS + 1)
                ],
                web_view=web_view_url(base, CAMPAIGN_ID, token, send_id or None),
            )
        )
    page = render_template("demo_newsletter.html", inboxes=inboxes, send_id=send_id)
    return page, 200, {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
