"""Newsletter slots at open time: rank the feed once per (recipient, send), show item *i* in
slot *i*, and send the slot's click to that item.

The first slot fetch of a recipient's send ranks the feed and stores the ranking with HSETNX;
a parallel fetch that lost the race reads the winner's ranking in the same pipeline, so every
slot of one email shows a distinct item of one ranking. A ranked item that has since expired
or been removed shows (and links to) the slot's fallback. Nothing here raises to the route.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models import keys
from models.bulk_pipeline import PackedPipeline
from models.campaigns import Campaign
from models.content_feed import ContentItem
from models.decision import Decision
from models.email_clients import ClientInfo, classify_open, classify_open_request
from models.erasure import Tombstones
from models.feed_store import FeedCache
from models.newsletter_store import parse_newsletter
from models.newsletters import Newsletter, Slot, slot_block_id
from models.recipient_reads import RecipientData, parse_recipient_reads, queue_recipient_reads
from models.sends import valid_send_id
from models.slot_ranking import SlotRanking, rank_items
from server.breaker import CircuitOpen
from server.click_signals import classify_click_of
from server.open_time import (
    LAST_RESORT,
    REDIS_FAILURES,
    SKIPPED,
    ImageAnswer,
    ImageOptions,
    OpenTime,
)
from server.tokens import identify

log = logging.getLogger(__name__)
PLAIN = ImageOptions()
MAX_RANKINGS_KEPT = 32
"""Rankings kept per recipient (one per send opened); the oldest are pruned."""


@dataclass(frozen=True)
class SlotSnapshot:
    """What one slot fetch needs, read in one pipelined round-trip."""

    campaign: Campaign | None
    newsletter: Newsletter | None
    send_id: str | None
    """The send the URL names, if it was recorded."""
    ranking_field: str
    """The field of the recipient's rankings hash for this send (see ``send_key``)."""
    ranking: SlotRanking | None
    rankings_held: int
    recipient: RecipientData
    refused: bool = False
    """The URL's recipient may not be used (erased, or an unsigned subscriber key the campaign
    does not accept): callers treat it as unverified."""
    restricted: bool = False
    """An accepted unsigned subscriber key: ranked for the recipient, drawn without profile."""


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


@dataclass(frozen=True)
class SlotPage:
    """Every slot of a newsletter for one recipient and send."""

    newsletter: Newsletter
    send_id: str | None
    """The send the URL names, if it was recorded."""
    contents: list[SlotContent]
    recipient_id: str | None = None
    """Whom the page is for: None for a bad token or an erased recipient (record nothing)."""


def drawn(snapshot: SlotSnapshot) -> Mapping[str, Any]:
    """The profile fields a slot may draw: none for an unsigned subscriber key, nor once the
    recipient has withdrawn consent (even if the stored ranking was personal)."""
    if snapshot.restricted or not snapshot.recipient.consents:
        return {}
    return snapshot.recipient.profile


def send_key(send_id: str | None, now: dt.datetime) -> str:
    """What a ranking is kept per: the send, or the UTC day for URLs without a send."""
    return send_id if send_id else f"day:{now.date().isoformat()}"


class SlotServer:
    """Serves slot images and clicks, sharing OpenTime's rendering, recording and breaker."""

    def __init__(self, open_time: OpenTime, feeds: FeedCache) -> None:
        self.open_time = open_time
        self.services = open_time.services
        self.feeds = feeds
        self.tombstones = self.services.engine.tombstones or Tombstones(
            self.services.redis, self.services.settings.signing_keys
        )
        self._known: dict[str, Newsletter] = {}
        self._lock = threading.Lock()

    def known(self, campaign_id: str) -> Newsletter | None:
        """The last version of the campaign's newsletter this worker has seen, if any."""
        with self._lock:
            return self._known.get(campaign_id)

    # images

    def image(
        self,
        campaign_id: str,
        slot: int,
        token: str | None,
        send_id: str | None,
        method: str,
        headers: Mapping[str, str],
        remote_addr: str | None = None,
        options: ImageOptions = PLAIN,
        subscriber_key: str | None = None,
    ) -> ImageAnswer:
        """The slot's image for this open, ranked (once per send), rendered and recorded.
        Without a genuine token, an ESP subscriber key counts where the campaign allows it."""
        client = classify_open_request(
            method, headers, remote_addr, self.open_time.mpp_ranges or ()
        )
        who = identify(self.services.signer, token, subscriber_key)
        return self.image_for(
            campaign_id,
            slot,
            who.recipient_id,
            send_id,
            client,
            self.services.clock(),
            options,
            signed=who.signed,
        )

    def image_for(
        self,
        campaign_id: str,
        slot: int,
        recipient_id: str | None,
        send_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        options: ImageOptions = PLAIN,
        *,
        record: bool = True,
        signed: bool = True,
    ) -> ImageAnswer:
        """The slot's image for a (verified) recipient at ``now``; never raises."""
        try:
            snapshot = self._load(campaign_id, send_id, recipient_id, now, signed)
            recipient_id = None if snapshot.refused else recipient_id
            content = self._content(snapshot, slot, recipient_id, now, store=True)
            if content is None:
                self.open_time.metrics.fallback("unknown slot")
                return LAST_RESORT
            answer = self._draw(content, slot, campaign_id, now, options)
            if record and recipient_id is not None and snapshot.newsletter is not None:
                self.open_time.record(
                    recipient_id,
                    self.decision(snapshot.newsletter, slot, content, client.client, now),
                    "open",
                    client.client,
                    client.open_kind,
                    store_decision=False,
                    send=snapshot.send_id,
                )
            return answer
        except CircuitOpen:
            return self._known_fallback(campaign_id, slot, SKIPPED, options)
        except REDIS_FAILURES as exc:
            self.open_time.breaker.failed(exc)
            self.open_time.metrics.redis_error("open")
            return self._known_fallback(campaign_id, slot, f"redis: {type(exc).__name__}", options)
        except Exception:
            log.exception("slot image failed; serving the fallback")
            return self._known_fallback(campaign_id, slot, "error", options)

    def _draw(
        self,
        content: SlotContent,
        slot: int,
        campaign_id: str,
        now: dt.datetime,
        options: ImageOptions,
    ) -> ImageAnswer:
        layout = content.slot
        label = f"{campaign_id}/{slot_block_id(slot)}"
        item = content.item
        if item is None:
            return self._fallback(layout, label, now, content.reason, options)
        params = layout.layout
        if getattr(params, "image_asset", "") is None and item.image_asset:
            params = params.model_copy(update={"image_asset": item.image_asset})
        try:
            return self.open_time.render(
                layout.width,
                layout.height,
                params,
                content.fields,
                now,
                options,
                personalised=not content.generic,
            )
        except REDIS_FAILURES:
            raise
        except Exception:
            log.exception("slot render failed for %s; serving the fallback", label)
            return self._fallback(layout, label, now, "render error", options)

    def _fallback(
        self,
        slot: Slot,
        label: str,
        now: dt.datetime,
        reason: str,
        options: ImageOptions,
        use_redis: bool = True,
    ) -> ImageAnswer:
        return self.open_time.render_fallback(
            slot.width, slot.height, slot.fallback, label, now, reason, options, use_redis
        )

    def _known_fallback(
        self, campaign_id: str, slot: int, reason: str, options: ImageOptions
    ) -> ImageAnswer:
        # Redis failures are logged once per window, by the breaker
        level = logging.DEBUG if reason.startswith("redis") else logging.WARNING
        log.log(level, "serving fallback for %s slot %d: %s", campaign_id, slot, reason)
        with self._lock:
            newsletter = self._known.get(campaign_id)
        if newsletter is None or not 0 < slot <= len(newsletter.slots):
            self.open_time.metrics.fallback("last resort")
            return LAST_RESORT
        label = f"{campaign_id}/{slot_block_id(slot)}"
        layout = newsletter.slots[slot - 1]
        return self._fallback(
            layout, label, self.services.clock(), reason, options, use_redis=False
        )

    # clicks

    def click(
        self,
        campaign_id: str,
        slot: int,
        token: str | None,
        send_id: str | None,
        method: str,
        headers: Mapping[str, str],
        subscriber_key: str | None = None,
    ) -> str:
        """Where the slot's click goes: the item this recipient's email shows in it; never
        raises. A bot click is counted as such and never fixes the ranking."""
        who = identify(self.services.signer, token, subscriber_key)
        client = classify_open(headers.get("User-Agent"))
        now = self.services.clock()
        try:
            send_id = send_id if send_id and valid_send_id(send_id) else None
            snapshot = self._load(campaign_id, send_id, who.recipient_id, now, who.signed)
            recipient_id = None if snapshot.refused else who.recipient_id
            verdict = classify_click_of(
                self.services,
                recipient_id,
                campaign_id,
                send_id,
                slot_block_id(slot),
                method,
                headers,
                now,
            )
            content = self._content(snapshot, slot, recipient_id, now, store=not verdict.bot)
            if content is None or snapshot.newsletter is None:
                return self.open_time.default_url()
            if recipient_id is not None:
                self.open_time.record(
                    recipient_id,
                    self.decision(snapshot.newsletter, slot, content, client.client, now),
                    "click",
                    verdict.client,
                    "bot" if verdict.bot else "human",
                    store_decision=False,
                    send=snapshot.send_id,
                )
            if content.item is not None:
                return content.item.url
            return content.shown_url or content.slot.fallback.target_url
        except CircuitOpen:
            pass
        except REDIS_FAILURES as exc:
            self.open_time.breaker.failed(exc)
            self.open_time.metrics.redis_error("click")
        except Exception:
            log.exception("slot click failed; redirecting to the fallback")
        with self._lock:
            newsletter = self._known.get(campaign_id)
        if newsletter is not None and 0 < slot <= len(newsletter.slots):
            return newsletter.slots[slot - 1].fallback.target_url
        return self.open_time.default_url()

    # every slot at once (web view, AMP)

    def page(
        self,
        campaign_id: str,
        recipient_id: str | None,
        send_id: str | None,
        now: dt.datetime,
        signed: bool = True,
    ) -> SlotPage | None:
        """What every slot of the newsletter shows this recipient for the send, from the same
        stored ranking as the slot images (ranking it now if no slot was fetched yet); None if
        the campaign has no newsletter. ``signed=False``: an unsigned subscriber key (restricted
        content, and only where the campaign allows them). Raises on Redis errors (callers
        answer a fallback)."""
        snapshot = self._load(campaign_id, send_id, recipient_id, now, signed)
        recipient_id = None if snapshot.refused else recipient_id
        newsletter = snapshot.newsletter
        if newsletter is None or snapshot.campaign is None:
            return None
        ranking = self._ranked(snapshot, recipient_id, now, store=True)
        profile = drawn(snapshot)
        contents = [
            self._slot_content(newsletter, snapshot.campaign, ranking, profile, slot, now)
            for slot in range(1, len(newsletter.slots) + 1)
        ]
        return SlotPage(newsletter, snapshot.send_id, contents, recipient_id)

    def decision(
        self,
        newsletter: Newsletter,
        slot: int,
        content: SlotContent,
        client: str,
        now: dt.datetime,
    ) -> Decision:
        """The decision a slot's open or click is recorded with: the item as the variant."""
        return Decision(
            campaign_id=newsletter.campaign_id,
            block_id=slot_block_id(slot),
            variant_id=content.item.id if content.item else None,
            version=newsletter.version,
            decided_at=now,
            reason=content.reason,
            client=client,
            first_open_at=content.ranked_at,
        )

    # the shared path

    def _load(
        self,
        campaign_id: str,
        send_id: str | None,
        recipient_id: str | None,
        now: dt.datetime,
        signed: bool = True,
    ) -> SlotSnapshot:
        self.open_time.breaker.check()
        send_id = send_id if send_id and valid_send_id(send_id) else None
        pipe = PackedPipeline(self.services.redis)
        pipe.get(keys.campaign(campaign_id))
        pipe.get(keys.newsletter(campaign_id))
        pipe.exists(keys.send(campaign_id, send_id or "-"))
        field = f"{campaign_id}/{send_key(send_id, now)}"
        if recipient_id is not None:
            pipe.hget(keys.rankings(recipient_id), field)
            pipe.hlen(keys.rankings(recipient_id))
            queue_recipient_reads(pipe, recipient_id, now)
            self.tombstones.queue_check(pipe, recipient_id)
        replies = pipe.execute()
        self.open_time.breaker.succeeded()
        campaign = Campaign.model_validate_json(replies[0]) if replies[0] else None
        newsletter = parse_newsletter(replies[1]) if replies[1] else None
        if newsletter is not None:
            with self._lock:
                self._known[campaign_id] = newsletter
        recorded_send = send_id if send_id and replies[2] else None
        accepted = signed or (campaign is not None and campaign.subscriber_keys)
        if recipient_id is None or Tombstones.parse_check(replies[-1]) or not accepted:
            return SlotSnapshot(
                campaign,
                newsletter,
                recorded_send,
                field,
                None,
                0,
                RecipientData(),
                refused=recipient_id is not None,
            )
        return SlotSnapshot(
            campaign,
            newsletter,
            recorded_send,
            field,
            SlotRanking.from_json(replies[3]) if replies[3] else None,
            int(replies[4]),
            parse_recipient_reads(replies[5:], now, self.open_time.services.engine.max_ages),
            restricted=not signed,
        )

    def _content(
        self,
        snapshot: SlotSnapshot,
        slot: int,
        recipient_id: str | None,
        now: dt.datetime,
        *,
        store: bool,
    ) -> SlotContent | None:
        """What the slot shows; None when the campaign, newsletter or slot does not exist."""
        newsletter, campaign = snapshot.newsletter, snapshot.campaign
        if newsletter is None or campaign is None or not 0 < slot <= len(newsletter.slots):
            return None
        ranking = self._ranked(snapshot, recipient_id, now, store=store)
        return self._slot_content(newsletter, campaign, ranking, drawn(snapshot), slot, now)

    def _ranked(
        self, snapshot: SlotSnapshot, recipient_id: str | None, now: dt.datetime, *, store: bool
    ) -> SlotRanking:
        """The recipient's ranking for the send: the stored one, else one ranked now (and
        stored, with ``store``, unless a parallel fetch stored one first)."""
        newsletter = snapshot.newsletter
        if snapshot.ranking is not None:
            return snapshot.ranking
        if newsletter is None:
            return SlotRanking((), True, now, 0)
        feed = self.feeds.get(newsletter.feed)
        data = snapshot.recipient
        personal = recipient_id is not None and data.known and data.consents
        ranking = rank_items(
            feed.items.values(),
            newsletter.ranking,
            data if personal else None,
            recipient_id or "",
            now,
            len(newsletter.slots),
            feed.version,
        )
        if store and recipient_id is not None:
            ranking = self._keep(recipient_id, snapshot, ranking)
        return ranking

    def _slot_content(
        self,
        newsletter: Newsletter,
        campaign: Campaign,
        ranking: SlotRanking,
        profile: Mapping[str, Any],
        slot: int,
        now: dt.datetime,
    ) -> SlotContent:
        """What slot ``slot`` shows given the recipient's ranking."""
        layout = newsletter.slots[slot - 1]
        if campaign.status != "active":
            return SlotContent(layout, None, {}, "campaign paused", True, None)
        ranked = ranking.item(slot)
        if ranked is None:
            return SlotContent(layout, None, {}, "no item left", ranking.generic, ranking.ranked_at)
        item = self.feeds.get(newsletter.feed).items.get(ranked.id)
        if item is None or not item.valid_at(now):
            return SlotContent(
                layout,
                None,
                {},
                "item unavailable",
                ranking.generic,
                ranking.ranked_at,
                shown_url=ranked.url,
            )
        return SlotContent(
            layout,
            item,
            {**({} if ranking.generic else profile), **item.fields()},
            "generic" if ranking.generic else "ranked",
            ranking.generic,
            ranking.ranked_at,
        )

    def _keep(
        self,
        recipient_id: str,
        snapshot: SlotSnapshot,
        ranking: SlotRanking,
    ) -> SlotRanking:
        """Store ``ranking`` unless a parallel fetch stored one first; return the stored one."""
        key = keys.rankings(recipient_id)
        field = snapshot.ranking_field
        pipe = self.services.redis.pipeline(transaction=False)
        pipe.hsetnx(key, field, ranking.to_json())
        pipe.hget(key, field)
        pipe.expire(key, self.services.settings.decision_ttl_seconds)
        if snapshot.rankings_held >= MAX_RANKINGS_KEPT:
            pipe.hkeys(key)
        replies = pipe.execute()
        if snapshot.rankings_held >= MAX_RANKINGS_KEPT:
            self._prune(key, replies[3], keep=field)
        return SlotRanking.from_json(replies[1]) if replies[1] else ranking

    def _prune(self, key: str, fields: list[str], keep: str) -> None:
        """Drop the oldest rankings (by the send date in the field name)."""
        by_age = sorted((f for f in fields if f != keep), key=lambda f: f.rpartition("/")[2][-10:])
        excess = len(by_age) + 1 - MAX_RANKINGS_KEPT
        if excess > 0:
            self.services.redis.hdel(key, *by_age[:excess])
