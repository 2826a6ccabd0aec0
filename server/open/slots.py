"""Newsletter slots at open time: rank the feed once per (recipient, send), show item *i* in
slot *i*, and send the slot's click to that item.

The first slot fetch of a recipient's send ranks the feed and stores the ranking with HSETNX;
a parallel fetch that lost the race reads the winner's ranking in the same round trip, so every
slot of one email shows a distinct item of one ranking. A ranked item that has since expired or
been removed shows the slot's fallback image, while its click still goes to the ranked item's
URL (what the email showed when first opened). Everything goes through the open core's
one pass and guard; nothing here raises to a route.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.campaigns.specs import Campaign
from models.decision import Decision
from models.email_clients import ClientInfo, classify_open
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Newsletter, Slot, slot_block_id
from models.newsletter.popularity import NO_POPULARITY, CachedPopularity
from models.newsletter.recipient_history import NO_HISTORY, RecipientHistory, read_history
from models.newsletter.sends import Send, valid_send_id
from models.newsletter.slot_ranking import SlotRanking, rank_items
from models.open_read import ClickMark
from models.recipients.segmentation import PERSONA_ATTRIBUTE
from models.storage import keys
from models.storage.batch import UNAVAILABLE, Batch
from renderers.registry import ContentParams
from server.open.answers import LAST_RESORT, PLAIN, ImageAnswer, ImageOptions, Redirect
from server.open.core import OpenCore, Visitor
from server.tokens import Identity

log = logging.getLogger(__name__)
MAX_RANKINGS_KEPT = 32
"""Rankings kept per recipient (one per send opened); the oldest are pruned."""


@dataclass(frozen=True)
class SlotOpen:
    """A newsletter's configuration and its recipient, loaded for one slot fetch or page."""

    campaign: Campaign | None
    newsletter: Newsletter | None
    send: Send | None
    """The send the URL names, if it was recorded."""
    ranking_field: str
    """The field of the recipient's rankings hash for this send (see ``send_key``)."""
    visitor: Visitor

    @property
    def send_id(self) -> str | None:
        """The recorded send's id, if any."""
        return self.send.id if self.send is not None else None

    @property
    def profile(self) -> Mapping[str, Any]:
        """The profile fields a slot may draw: none for an unsigned subscriber key, nor once
        the recipient withdrew consent (even if the stored ranking was personal)."""
        return self.visitor.profile

    @property
    def persona(self) -> str | None:
        """The recipient's persona, when their profile may be used."""
        value = self.profile.get(PERSONA_ATTRIBUTE)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SlotContent:
    """What a slot shows: an item (with the fields its layout reads) or the fallback."""

    slot: Slot
    item: ContentItem | None
    fields: Mapping[str, Any]
    reason: str
    generic: bool
    ranked_at: dt.datetime | None
    shown_url: str | None = None
    """Where the ranked item linked when it was shown, for clicks after it expired or went."""
    shown_item: str | None = None
    """That item's id: a click that follows ``shown_url`` is the item's, not the fallback's."""
    profile: Mapping[str, Any] | None = None
    """The profile fields among ``fields`` (what makes a render of it personal)."""


@dataclass(frozen=True)
class SlotPage:
    """Every slot of a newsletter for one recipient and send."""

    newsletter: Newsletter
    send_id: str | None
    """The send the URL names, if it was recorded."""
    contents: list[SlotContent]
    recipient_id: str | None = None
    """Whom the page is for: None for a bad token or an erased recipient (record nothing)."""


def send_key(send_id: str | None, now: dt.datetime) -> str:
    """What a ranking is kept per: the send, or the UTC day for URLs without a send."""
    return send_id if send_id else f"day:{now.date().isoformat()}"


PICTURED_KEPT = 4096


class SlotServer:
    """Serves slot images, clicks and whole pages through the open core."""

    def __init__(self, core: OpenCore) -> None:
        self.core = core
        self.services = core.services
        self._pictured: dict[tuple[int, str], tuple[ContentParams, ContentParams]] = {}
        self.popularity = CachedPopularity(self.services.redis_open, core.breakers)

    def _with_picture(self, params: ContentParams, asset_id: str) -> ContentParams:
        """A layout's params showing an item's picture, made once per layout version and
        picture: the render keys and the renderer's memos go by params object, so a fresh copy
        per open would hash the whole layout every time. At most ``PICTURED_KEPT`` are kept (the
        entry holds the layout's params, so their id is not reused meanwhile)."""
        key = (id(params), asset_id)
        held = self._pictured.get(key)
        if held is not None:
            return held[1]
        copied = params.model_copy(update={"image_asset": asset_id})
        if len(self._pictured) >= PICTURED_KEPT:
            self._pictured.clear()
        self._pictured[key] = (params, copied)
        return copied

    # images

    def image(
        self,
        campaign_id: str,
        slot: int,
        who: Identity,
        send_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        options: ImageOptions = PLAIN,
        *,
        record: bool = True,
    ) -> ImageAnswer:
        """The slot's image for this open, ranked (once per send), drawn and recorded. Never
        raises."""
        core = self.core

        def attempt() -> ImageAnswer:
            opened = self.load(campaign_id, send_id, who, now)
            recipient_id = opened.visitor.recipient_id
            content = self._content(opened, slot, now, store=True)
            if content is None or opened.newsletter is None:
                core.metrics.fallback("unknown slot")
                return LAST_RESORT
            label = f"{campaign_id}/{slot_block_id(slot)}"
            if content.item is None:
                answer = self._fallback(content.slot, label, now, content.reason, options)
            else:
                answer = self._draw(content, label, now, options)
            if record and recipient_id is not None:
                core.record(
                    recipient_id,
                    self.decision(opened.newsletter, slot, content, client.client, now),
                    "open",
                    client.client,
                    client.open_kind,
                    store_decision=False,
                    send=opened.send_id,
                    persona=opened.persona,
                )
            return answer

        return core.guarded(
            "open",
            attempt,
            lambda reason: self._known_fallback(campaign_id, slot, reason, options),
        )

    def _draw(
        self, content: SlotContent, label: str, now: dt.datetime, options: ImageOptions
    ) -> ImageAnswer:
        layout = content.slot
        params = layout.layout
        item = content.item
        if item is not None and getattr(params, "image_asset", "") is None and item.image_asset:
            params = self._with_picture(params, item.image_asset)
        profile = content.profile or {}
        extra = {k: v for k, v in content.fields.items() if k not in profile}
        try:
            return self.core.drawing.render(
                layout.width,
                layout.height,
                params,
                profile,
                extra,
                now,
                options,
                personalised=not content.generic,
            )
        except Exception:
            log.exception("slot render failed for %s; serving the fallback", label)
            return self._fallback(layout, label, now, "render error", options)

    def _fallback(
        self, slot: Slot, label: str, now: dt.datetime, reason: str, options: ImageOptions
    ) -> ImageAnswer:
        return self.core.drawing.fallback(
            slot.width, slot.height, slot.fallback, label, now, reason, options
        )

    def _known_fallback(
        self, campaign_id: str, slot: int, reason: str, options: ImageOptions
    ) -> ImageAnswer:
        newsletter = self.core.config.last_known_newsletter(campaign_id)
        if newsletter is None or not 0 < slot <= len(newsletter.slots):
            self.core.metrics.fallback("last resort")
            return LAST_RESORT
        label = f"{campaign_id}/{slot_block_id(slot)}"
        layout = newsletter.slots[slot - 1]
        return self._fallback(layout, label, self.services.clock(), reason, options)

    # clicks

    def click(
        self,
        campaign_id: str,
        slot: int,
        who: Identity,
        send_id: str | None,
        method: str,
        headers: Mapping[str, str],
    ) -> Redirect:
        """Where the slot's click goes: the item this recipient's email shows in it; a
        person's click carries an attribution token. A bot click is counted as such and never
        fixes the ranking. Never raises."""
        core = self.core
        client = classify_open(headers.get("User-Agent"))
        now = self.services.clock()

        def attempt() -> Redirect:
            send = core.recorded_send(campaign_id, send_id)
            mark = ClickMark(
                campaign_id, send.id if send else None, slot_block_id(slot), now.timestamp()
            )
            opened = self.load(campaign_id, send_id, who, now, click=mark)
            recipient_id = opened.visitor.recipient_id
            verdict = core.classify_click(opened.visitor, campaign_id, send, method, headers, now)
            content = self._content(opened, slot, now, store=not verdict.bot)
            if content is None or opened.newsletter is None:
                return Redirect(core.default_url())
            if content.item is not None:
                url = content.item.url
            else:
                url = content.shown_url or content.slot.fallback.target_url
            ref = core.click_ref(recipient_id, url, human=not verdict.bot)
            if recipient_id is not None:
                core.record(
                    recipient_id,
                    self.decision(opened.newsletter, slot, content, client.client, now, click=True),
                    "click",
                    verdict.client,
                    "bot" if verdict.bot else "human",
                    store_decision=False,
                    send=opened.send_id,
                    click_ref=ref,
                    persona=opened.persona,
                )
            return core.redirect(url, ref)

        def fallback(reason: str) -> Redirect:
            newsletter = core.config.last_known_newsletter(campaign_id)
            if newsletter is not None and 0 < slot <= len(newsletter.slots):
                return Redirect(newsletter.slots[slot - 1].fallback.target_url)
            return Redirect(core.default_url())

        return core.guarded("click", attempt, fallback)

    # every slot at once (web view, AMP, the channel endpoint)

    def page(self, opened: SlotOpen, now: dt.datetime) -> SlotPage | None:
        """What every slot of the newsletter shows this recipient for the send, from the same
        stored ranking as the slot images (ranking it now if no slot was fetched yet); None if
        the campaign has no newsletter. Raises Redis failures (callers answer a fallback)."""
        newsletter = opened.newsletter
        if newsletter is None or opened.campaign is None:
            return None
        ranking = self._ranked(opened, now, store=True)
        contents = [
            self._slot_content(opened, ranking, slot, now)
            for slot in range(1, len(newsletter.slots) + 1)
        ]
        return SlotPage(newsletter, opened.send_id, contents, opened.visitor.recipient_id)

    def decision(
        self,
        newsletter: Newsletter,
        slot: int,
        content: SlotContent,
        client: str,
        now: dt.datetime,
        *,
        click: bool = False,
    ) -> Decision:
        """The decision a slot's open or click is recorded with: the item as the variant (a
        click on an item gone since it was shown follows it, and is the item's)."""
        item_id = content.item.id if content.item else None
        if click and item_id is None and content.shown_url:
            item_id = content.shown_item
        return Decision(
            campaign_id=newsletter.campaign_id,
            block_id=slot_block_id(slot),
            variant_id=item_id,
            version=newsletter.version,
            decided_at=now,
            reason=content.reason,
            client=client,
            first_open_at=content.ranked_at,
        )

    # the shared path

    def load(
        self,
        campaign_id: str,
        send_id: str | None,
        who: Identity,
        now: dt.datetime,
        *,
        blocks: tuple[str, ...] = (),
        click: ClickMark | None = None,
    ) -> SlotOpen:
        """The newsletter's configuration and the recipient's data and ranking for the send
        (and the stored decisions of ``blocks``, for the web view): one read."""
        core = self.core
        core.config.refresh()
        campaign, newsletter = core.config.campaign_and_newsletter(campaign_id)
        send_id = send_id if send_id and valid_send_id(send_id) else None
        send = core.recorded_send(campaign_id, send_id)
        field = f"{campaign_id}/{send_key(send_id, now)}"  # kept per send, recorded or not
        visitor = core.visitor(
            who,
            campaign,
            now,
            blocks=[(campaign_id, block_id) for block_id in blocks],
            ranking_field=field,
            click=click,
        )
        return SlotOpen(campaign, newsletter, send, field, visitor)

    def _content(
        self, opened: SlotOpen, slot: int, now: dt.datetime, *, store: bool
    ) -> SlotContent | None:
        """What the slot shows; None when the campaign, newsletter or slot does not exist."""
        newsletter, campaign = opened.newsletter, opened.campaign
        if newsletter is None or campaign is None or not 0 < slot <= len(newsletter.slots):
            return None
        ranking = self._ranked(opened, now, store=store)
        return self._slot_content(opened, ranking, slot, now)

    def _ranked(self, opened: SlotOpen, now: dt.datetime, *, store: bool) -> SlotRanking:
        """The recipient's ranking for the send: the stored one, else one ranked now (and
        stored, with ``store``, unless a parallel fetch stored one first)."""
        newsletter = opened.newsletter
        read = opened.visitor.read
        if read.ranking is not None:
            return read.ranking
        if newsletter is None:
            return SlotRanking((), True, now, 0)
        feed = self.core.config.feed(newsletter.feed)
        data = read.data
        recipient_id = opened.visitor.recipient_id
        personal = recipient_id is not None and data.known and data.consents
        history, popularity = NO_HISTORY, NO_POPULARITY
        if personal and recipient_id is not None:
            history = self._history(recipient_id, newsletter.campaign_id, opened.ranking_field)
            popularity = self.popularity(newsletter.campaign_id, opened.persona)
        ranking = rank_items(
            feed.items.values(),
            newsletter.ranking,
            data if personal else None,
            recipient_id or "",
            now,
            len(newsletter.slots),
            feed.version,
            history,
            popularity,
        )
        if store and recipient_id is not None:
            ranking = self._keep(recipient_id, opened, ranking)
        return ranking

    def _history(self, recipient_id: str, campaign_id: str, current: str) -> RecipientHistory:
        """The recipient's past sends, item clicks and purchases (a second round trip, made
        only when a send's ranking is made); without them when Redis fails: the ranking goes
        on without history rather than fail the open."""
        try:
            return read_history(
                self.services.redis_open, recipient_id, campaign_id, current, self.core.breakers
            )
        except UNAVAILABLE:
            return NO_HISTORY

    def _slot_content(
        self, opened: SlotOpen, ranking: SlotRanking, slot: int, now: dt.datetime
    ) -> SlotContent:
        """What slot ``slot`` shows given the recipient's ranking."""
        newsletter, campaign = opened.newsletter, opened.campaign
        assert newsletter is not None
        assert campaign is not None
        layout = newsletter.slots[slot - 1]
        if campaign.status != "active":
            return SlotContent(layout, None, {}, "campaign paused", True, None)
        ranked = ranking.item(slot)
        if ranked is None:
            return SlotContent(layout, None, {}, "no item left", ranking.generic, ranking.ranked_at)
        item = self.core.config.feed(newsletter.feed).items.get(ranked.id)
        if item is None or not item.valid_at(now):
            return SlotContent(
                layout,
                None,
                {},
                "item unavailable",
                ranking.generic,
                ranking.ranked_at,
                shown_url=ranked.url,
                shown_item=ranked.id,
            )
        profile = {} if ranking.generic else opened.profile
        return SlotContent(
            layout,
            item,
            {**profile, **item.fields()},
            "generic" if ranking.generic else "ranked",
            ranking.generic,
            ranking.ranked_at,
            profile=profile,
        )

    def _keep(self, recipient_id: str, opened: SlotOpen, ranking: SlotRanking) -> SlotRanking:
        """Store ``ranking`` unless a parallel fetch stored one first (or the recipient was
        erased meanwhile); return the stored one (one round trip to the recipient's node)."""
        key = keys.rankings(recipient_id)
        field = opened.ranking_field
        batch = Batch(self.services.redis_open, guard=self.core.breakers)
        stored = self.services.tombstones.queue_unless_erased(
            batch,
            recipient_id,
            [
                ("HSETNX", key, field, ranking.to_json()),
                ("EXPIRE", key, self.services.settings.decision_ttl_seconds),
                ("HGET", key, field),
            ],
        )
        prune = opened.visitor.read.rankings_held >= MAX_RANKINGS_KEPT
        fields = batch.add("HKEYS", key) if prune else None
        replies = batch.execute()
        if fields is not None:
            self._prune(key, replies[fields], keep=field)
        return SlotRanking.from_json(replies[stored]) if replies[stored] else ranking

    def _prune(self, key: str, fields: list[str], keep: str) -> None:
        """Drop the oldest rankings (by the send date in the field name)."""
        by_age = sorted((f for f in fields if f != keep), key=lambda f: f.rpartition("/")[2][-10:])
        excess = len(by_age) + 1 - MAX_RANKINGS_KEPT
        if excess > 0:
            batch = Batch(self.services.redis_open, guard=self.core.breakers)
            batch.add("HDEL", key, *by_age[:excess])
            batch.execute()
