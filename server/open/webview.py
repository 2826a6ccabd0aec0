"""The web view ("view in browser"): the whole newsletter for one recipient and send as it is
at this moment, with the same decisions, rankings and clicks as the email's images.

``GET /v/<campaign>?r=<token>&s=<send>``. The campaign's newsletter blocks come first, then the
slots. A block whose shown content has live ``html`` is decided here (like an image open:
stored, so its click follows, and recorded), the others are shown as their image, which decides
when the browser fetches it. Slots show their item's live HTML from the stored ranking (and
record the open), falling back to the slot image when the item's HTML cannot be rendered. The
whole page reads its recipient once (the open core's one read). The page is ``noindex`` and
never stored by caches; a failing part shows its image instead, and when Redis is away every
part is an image.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from models.campaigns.specs import Block
from models.email_clients import ClientInfo, classify_open_request
from models.newsletter.newsletters import Newsletter
from models.newsletter.sends import valid_send_id
from models.storage.batch import UNAVAILABLE
from models.storage.breakers import CircuitOpen
from server.open.core import BlockOpen, OpenCore
from server.open.routes import PERSONAL_CACHE_CONTROL
from server.open.slot_views import click_query, pictures, slot_alt, slot_html, slot_item
from server.open.slots import SlotOpen, SlotPage, SlotServer
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
EXTENSION = "blanco.web_view"


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
    """Builds the page from the open core."""

    def __init__(self, core: OpenCore, slots: SlotServer) -> None:
        self.core = core
        self.slots = slots
        self.services = core.services

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
        genuine token, a subscriber key counts where the campaign allows it (restricted). The
        recipient's data, block decisions and slot ranking come from one read."""
        core = self.core
        who = core.identify(token, subscriber_key)
        send_id = send_id if send_id and valid_send_id(send_id) else None

        def attempt() -> tuple[str, list[Section]] | None:
            core.config.refresh()
            _, newsletter = core.config.campaign_and_newsletter(campaign_id)
            if newsletter is None:
                return None
            opened = self.slots.load(
                campaign_id, send_id, who, now, blocks=tuple(newsletter.blocks)
            )
            page = self.slots.page(opened, now)
            if page is None:
                return None
            visitor = opened.visitor
            query = self._query(token, send_id, visitor.recipient_id, who.signed)
            found = [
                self._block(opened, block_id, client, now, query) for block_id in newsletter.blocks
            ]
            found += self._slots(page, visitor.recipient_id, client, now, query)
            return newsletter.name or campaign_id, found

        def images_only(reason: str) -> tuple[str, list[Section]] | None:
            newsletter = core.config.last_known_newsletter(campaign_id)
            if newsletter is None:
                return None
            recipient_id = who.recipient_id if who.signed else None
            query = self._query(token, send_id, recipient_id, who.signed)
            found = [
                self._block_image(newsletter.campaign_id, b, None, "", query)
                for b in newsletter.blocks
            ]
            found += [
                self._slot_image(campaign_id, n, newsletter, query) for n in _numbers(newsletter)
            ]
            return newsletter.name or campaign_id, found

        return core.guarded("web_view", attempt, images_only)

    @staticmethod
    def _query(
        token: str | None, send_id: str | None, recipient_id: str | None, signed: bool
    ) -> str:
        """The query of the page's image and click URLs: the genuine token, else an accepted
        subscriber key, and the send."""
        if recipient_id is not None and signed:
            return click_query(token, send_id)
        return click_query(None, send_id, recipient_id)

    # blocks

    def _block(
        self,
        opened: SlotOpen,
        block_id: str,
        client: ClientInfo,
        now: dt.datetime,
        query: str,
    ) -> Section:
        core = self.core
        campaign_id = opened.newsletter.campaign_id if opened.newsletter else ""
        block: Block | None = None
        try:
            campaign, block = core.config.campaign_and_block(campaign_id, block_id)
            if block is None:
                return self._block_image(campaign_id, block_id, None, "", query)
            visitor = opened.visitor
            snapshot = core.snapshot(campaign, block, visitor, campaign_id, block_id)
            decided = core.decide(
                BlockOpen(campaign_id, block_id, campaign, block, visitor, snapshot), client, now
            )
            decision = decided.decision
            content = decided.shown.shown(decision.variant_id)
            alt = core.alt(decided, visitor, snapshot, now)
            if content.html is None:
                return self._block_image(campaign_id, block_id, block, alt, query)
            fields = visitor.profile if decision.variant_id is not None else {}
            link = f"{self.services.settings.public_url}{click_path(campaign_id, block_id)}{query}"
            html = content.html.render({**fields, "click_url": link, "alt": alt})
            if visitor.recipient_id is not None:
                core.record(
                    visitor.recipient_id, decision, "open", client.client, client.open_kind,
                    store_decision=True,
                )  # fmt: skip
            return Section(html=html)
        except UNAVAILABLE as failure:
            if not isinstance(failure, CircuitOpen):
                core.metrics.redis_error("webview")
            log.warning(
                "web view block %s/%s: redis %s; showing its image",
                campaign_id,
                block_id,
                type(failure).__name__,
            )
            return self._block_image(campaign_id, block_id, block, "", query)
        except Exception:
            log.exception("web view block %s/%s failed; showing its image", campaign_id, block_id)
            return self._block_image(campaign_id, block_id, block, "", query)

    def _block_image(
        self, campaign_id: str, block_id: str, block: Block | None, alt: str, query: str
    ) -> Section:
        base = self.services.settings.public_url
        image = f"{base}{image_path(campaign_id, block_id)}{query}"
        link = f"{base}{click_path(campaign_id, block_id)}{query}"
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
            assets = pictures(self.core.config, page.contents)
        except Exception:  # pictures are a nicety: without them items show no image
            log.warning("web view pictures of %s unavailable", campaign_id)
            assets = {}
        found = []
        for number, content in enumerate(page.contents, start=1):
            url = f"{base}{slot_click_path(campaign_id, number)}{query}"
            alt = slot_alt(content)
            if content.item is None:
                found.append(self._slot_image(campaign_id, number, newsletter, query, alt))
                continue
            try:
                max_length = self.services.settings.max_text_length
                data = slot_item(number, content, assets, url, base, max_length)
                found.append(Section(html=slot_html(content, data)))
            except Exception:
                log.exception("web view slot %s/%d failed; showing its image", campaign_id, number)
                found.append(self._slot_image(campaign_id, number, newsletter, query, alt))
                continue
            if recipient_id is not None:
                self.core.record(
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
        self,
        campaign_id: str,
        number: int,
        newsletter: Newsletter,
        query: str,
        alt: str | None = None,
    ) -> Section:
        """A slot as its image; ``alt`` describes what it shows (unknown: the slot's alt)."""
        base = self.services.settings.public_url
        slot = newsletter.slots[number - 1]
        separator = "&" if query else "?"
        return Section(
            image=f"{base}{slot_image_path(campaign_id, number)}{query}{separator}dpr=2",
            link=f"{base}{slot_click_path(campaign_id, number)}{query}",
            width=slot.width,
            height=slot.height,
            alt=slot.alt if alt is None else alt,
        )


def _numbers(newsletter: Newsletter) -> range:
    return range(1, len(newsletter.slots) + 1)


def web_view() -> WebView:
    """The app's web view."""
    found: WebView = current_app.extensions[EXTENSION]
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
    response.headers["Cache-Control"] = PERSONAL_CACHE_CONTROL
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def web_view_url(public_url: str, campaign_id: str, token: str, send_id: str | None) -> str:
    """The web view URL of a recipient's newsletter."""
    url = f"{public_url}{web_view_path(campaign_id)}?{TOKEN_PARAM}={quote(token, safe='')}"
    return url + (f"&{SEND_PARAM}={send_id}" if send_id else "")
