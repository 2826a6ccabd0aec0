"""The web view ("view in browser"): the whole newsletter for one recipient and send as it is
at this moment, with the same decisions, rankings and clicks as the email's images.

``GET /v/<campaign>?r=<token>&s=<send>``. The campaign's newsletter blocks come first, then the
slots. A block whose shown content has live ``html`` is decided here (like an image open:
stored, so its click follows, and recorded), the others are shown as their image, which decides
when the browser fetches it. Slots show their item's live HTML from the stored ranking (and
record the open), falling back to the slot image when the item's HTML cannot be rendered. The
page is ``noindex`` and never stored by caches; a failing part shows its image instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from models.campaigns import Block
from models.email_clients import ClientInfo, classify_open_request
from models.newsletters import Newsletter
from models.sends import valid_send_id
from server.breaker import CircuitOpen
from server.open_slots import SlotPage, SlotServer
from server.open_time import REDIS_FAILURES, OpenTime
from server.slot_views import click_query, pictures, slot_html, slot_item
from server.tokens import identify
from server.urls import (
    KEY_PARAM,
    SEND_PARAM,
    TOKEN_PARAM,
    click_path,
    image_path,
    slot_click_path,
    slot_image_path,
)

log = logging.getLogger(__name__)
bp = Blueprint("web_view", __name__)
NO_STORE = "no-cache, no-store, max-age=0, private"


@dataclass(frozen=True)
class Section:
    """One part of the page: live HTML, or an image inside its link."""

    html: Markup | None = None
    image: str = ""
    link: str = ""
    width: int = 600
    height: int = 200
    alt: str = ""


def web_view_path(campaign_id: str) -> str:
    """Path of a newsletter's web view."""
    return f"/v/{campaign_id}"


class WebView:
    """Builds the page from the open-time services."""

    def __init__(self, open_time: OpenTime, slots: SlotServer) -> None:
        self.open_time = open_time
        self.slots = slots
        self.services = open_time.services

    def sections(
        self,
        campaign_id: str,
        token: str | None,
        send_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        subscriber_key: str | None = None,
    ) -> tuple[str, list[Section]] | None:
        """The page's title and sections; None if the campaign has no newsletter. Without a
        genuine token, a subscriber key counts where the campaign allows it (restricted)."""
        who = identify(self.services.signer, token, subscriber_key)
        recipient_id, signed = who.recipient_id, who.signed
        send_id = send_id if send_id and valid_send_id(send_id) else None
        try:
            page = self.slots.page(campaign_id, recipient_id, send_id, now, signed)
        except CircuitOpen:
            page = None
        except REDIS_FAILURES as exc:
            self.open_time.breaker.failed(exc)
            self.open_time.metrics.redis_error("web_view")
            page = None
        except Exception:
            log.exception("web view slots of %s failed; showing the slot images", campaign_id)
            page = None
        if page is not None:
            recipient_id = page.recipient_id  # None when erased or not accepted
        elif not signed:
            recipient_id = None  # whether the campaign accepts keys is unknown
        query = (
            click_query(token, send_id)
            if recipient_id and signed
            else click_query(None, send_id, recipient_id)
        )
        newsletter = page.newsletter if page else self.slots.known(campaign_id)
        if newsletter is None:
            return None
        found = [
            self._block(newsletter, block_id, recipient_id, signed, client, now, query)
            for block_id in newsletter.blocks
        ]
        if page is not None:
            found += self._slots(page, recipient_id, client, now, query)
        else:
            found += [
                self._slot_image(campaign_id, n, newsletter, query) for n in _numbers(newsletter)
            ]
        return newsletter.name or campaign_id, found

    # blocks

    def _block(
        self,
        newsletter: Newsletter,
        block_id: str,
        recipient_id: str | None,
        signed: bool,
        client: ClientInfo,
        now: dt.datetime,
        query: str,
    ) -> Section:
        campaign_id = newsletter.campaign_id
        base = self.services.settings.public_url
        image = f"{base}{image_path(campaign_id, block_id)}{query}"
        link = f"{base}{click_path(campaign_id, block_id)}{query}"
        block: Block | None = None
        try:
            snapshot = self.services.engine.load(campaign_id, block_id, recipient_id, now)
            recipient_id = None if snapshot.erased else recipient_id
            block = snapshot.block
            if block is None:
                return Section(image=image, link=link)
            decision, shown = self.services.engine.decide(snapshot, recipient_id, now, client)
            shown = shown or block
            variant = shown.variant(decision.variant_id) if decision.variant_id else None
            content = variant or shown.fallback
            if content.html is None:
                return self._image(image, link, block, content.alt)
            fields = snapshot.recipient.profile if variant is not None and signed else {}
            html = content.html.render({**fields, "click_url": link})
            if recipient_id is not None:
                self.open_time.record(
                    recipient_id, decision, "open", client.client, client.open_kind,
                    store_decision=True,
                )  # fmt: skip
            return Section(html=html)
        except Exception:
            log.exception("web view block %s/%s failed; showing its image", campaign_id, block_id)
            return self._image(image, link, block, "")

    @staticmethod
    def _image(image: str, link: str, block: Block | None, alt: str) -> Section:
        retina = f"{image}{'&' if '?' in image else '?'}dpr=2"
        if block is None:
            return Section(image=retina, link=link)
        return Section(
            image=retina,
            link=link,
            width=block.width,
            height=block.height,
            alt=alt or block.fallback.alt,
        )

    # slots

    def _slots(
        self,
        page: SlotPage,
        recipient_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        query: str,
    ) -> list[Section]:
        newsletter = page.newsletter
        campaign_id = newsletter.campaign_id
        base = self.services.settings.public_url
        try:
            assets = pictures(self.services, page.contents)
        except Exception:  # pictures are a nicety: without them items show no image
            log.warning("web view pictures of %s unavailable", campaign_id)
            assets = {}
        found = []
        for number, content in enumerate(page.contents, start=1):
            url = f"{base}{slot_click_path(campaign_id, number)}{query}"
            if content.item is None:
                found.append(self._slot_image(campaign_id, number, newsletter, query))
                continue
            try:
                max_length = self.services.settings.max_text_length
                data = slot_item(number, content, assets, url, base, max_length)
                found.append(Section(html=slot_html(content, data)))
            except Exception:
                log.exception("web view slot %s/%d failed; showing its image", campaign_id, number)
                found.append(self._slot_image(campaign_id, number, newsletter, query))
                continue
            if recipient_id is not None:
                self.open_time.record(
                    recipient_id,
                    self.slots.decision(newsletter, number, content, client.client, now),
                    "open",
                    client.client,
                    client.open_kind,
                    store_decision=False,
                    send=page.send_id,
                )
        return found

    def _slot_image(
        self, campaign_id: str, number: int, newsletter: Newsletter, query: str
    ) -> Section:
        base = self.services.settings.public_url
        slot = newsletter.slots[number - 1]
        separator = "&" if query else "?"
        return Section(
            image=f"{base}{slot_image_path(campaign_id, number)}{query}{separator}dpr=2",
            link=f"{base}{slot_click_path(campaign_id, number)}{query}",
            width=slot.width,
            height=slot.height,
            alt=slot.alt,
        )


def _numbers(newsletter: Newsletter) -> range:
    return range(1, len(newsletter.slots) + 1)


def web_view() -> WebView:
    """The app's web view."""
    found: WebView = current_app.extensions["blanco.web_view"]
    return found


@bp.get("/v/<campaign_id>")
def newsletter_page(campaign_id: str) -> Response:
    """The newsletter as this recipient would see it now (the email's "view in browser")."""
    view = web_view()
    client = classify_open_request(request.method, dict(request.headers.items()), None, ())
    built = view.sections(
        campaign_id,
        request.args.get(TOKEN_PARAM),
        request.args.get(SEND_PARAM),
        client,
        view.services.clock(),
        request.args.get(KEY_PARAM),
    )
    if built is None:
        page = render_template("gone.html")
        status = 404
    else:
        title, sections = built
        page = render_template("webview/newsletter.html", title=title, sections=sections)
        status = 200
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def web_view_url(public_url: str, campaign_id: str, token: str, send_id: str | None) -> str:
    """The web view URL of a recipient's newsletter."""
    url = f"{public_url}{web_view_path(campaign_id)}?{TOKEN_PARAM}={quote(token, safe='')}"
    return url + (f"&{SEND_PARAM}={send_id}" if send_id else "")
