"""The one open-time pass, behind one guard.

Every way of asking what a recipient sees (a block's image or click, a newsletter slot, the web
view, AMP, the cross-channel endpoints) goes through the same steps:

1. **identify**: the signed token (or an accepted ESP subscriber key) names the recipient;
2. **load**: the configuration from the worker's cache (``models.config_cache``), and the
   recipient's data in one read with named results (``models.open_read``): one round trip to
   the recipient's Redis node;
3. **decide**: the decision engine (``models.decision``), or the slot ranking;
4. **render or look up**: ``server.open.drawing``;
5. **record**: the background writer (``server.open.recorder``).

``OpenCore.guarded`` runs an attempt and turns any failure into the caller's fallback: a Redis
node that fails (or whose circuit breaker is open) gives ``redis: …``, anything else ``error``.
It counts the failure and never raises. The per-node breakers (``models.storage.breakers``)
are asked and told by every batch the open path sends, so they are tripped in one place.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from models.campaigns.specs import Block, Campaign
from models.config_cache import ConfigCache
from models.conversions.click_refs import ClickRef
from models.decision import Decision, DecisionEngine, Snapshot
from models.email_clients import (
    AddressRanges,
    ClickInfo,
    ClientInfo,
    classify_click,
    classify_open,
    classify_open_request,
)
from models.measurement.stats import CachedTotals
from models.newsletter.sends import Send, valid_send_id
from models.open_read import NOBODY, ClickMark, RecipientRead, read_recipient
from models.storage.batch import REDIS_FAILURES, UNAVAILABLE, NodeFailure, Sent
from models.storage.breakers import Breakers, CircuitOpen
from models.storage.clients import LazyCluster, TopologyRefresh, cluster_of
from renderers.base import ContentUnavailable
from renderers.templating import LIVE_FIELD
from server.metrics import Metrics
from server.open.alt_text import shown_alt
from server.open.answers import (
    LAST_RESORT,
    PLAIN,
    SKIPPED,
    ImageAnswer,
    ImageOptions,
    Redirect,
)
from server.open.clicks import ClickContext, classify_click_in_context
from server.open.drawing import Drawing
from server.open.recorder import Record, Recorder
from server.services import Services
from server.tokens import Identity, identify
from server.urls import token_host, with_param

log = logging.getLogger(__name__)
T = TypeVar("T")


def to_store(previous: Decision | None, decision: Decision) -> bool:
    """Whether an open's ``decision`` is stored: when it ``changed``, unless it is a machine's
    (a prefetch) and the stored one a person's, which the person's click must follow."""
    if previous is not None and previous.human and not decision.human:
        return False
    return changed(previous, decision)


def changed(previous: Decision | None, decision: Decision) -> bool:
    """Whether ``decision`` must be stored: a re-open that shows the same content to the same
    client class needs no write (the stored one still says what the click follows)."""
    if previous is None:
        return True
    same = (previous.variant_id, previous.version, previous.client, previous.holdout)
    return same != (decision.variant_id, decision.version, decision.client, decision.holdout)


def what_was_shown(decision: Decision, answer: ImageAnswer) -> Decision:
    """The decision as the image showed it: a variant whose render failed (or whose content
    was unavailable) was shown as the fallback, so its click and its count follow the
    fallback too."""
    if decision.variant_id is None or answer.fallback_reason is None:
        return decision
    return replace(decision, variant_id=None, reason=answer.fallback_reason)


def failure_reason(error: BaseException) -> str:
    """The fallback reason of a Redis failure: ``redis: TimeoutError`` and the like."""
    cause = error.cause if isinstance(error, NodeFailure) else error
    return f"redis: {type(cause).__name__}"


@dataclass(frozen=True)
class Visitor:
    """Who an open is for, once the campaign's rules are applied: ``recipient_id`` is None for
    a bad token, an erased recipient, or an unsigned key the campaign does not accept."""

    recipient_id: str | None
    signed: bool
    read: RecipientRead = NOBODY

    @property
    def profile(self) -> Mapping[str, Any]:
        """The profile fields content may draw: none for an unsigned key or without consent."""
        data = self.read.data
        return data.profile if self.signed and data.consents else {}


@dataclass(frozen=True)
class BlockOpen:
    """A block's configuration and its recipient, loaded for one open or click."""

    campaign_id: str
    block_id: str
    campaign: Campaign | None
    block: Block | None
    visitor: Visitor
    snapshot: Snapshot

    @property
    def previous(self) -> Decision | None:
        """What the recipient was last shown for this block, if anything."""
        return self.snapshot.previous


@dataclass(frozen=True)
class Decided:
    """An open's decision and the block version it refers to."""

    decision: Decision
    shown: Block


class OpenCore:
    """Identify, load, decide, render, record: the open-time pass and its guard."""

    def __init__(
        self, services: Services, metrics: Metrics, mpp_ranges: AddressRanges | None = None
    ) -> None:
        settings = services.settings
        self.services = services
        self.metrics = metrics
        self.mpp_ranges = mpp_ranges
        self.breakers = Breakers(
            settings.redis_retry_after_seconds, on_open=self._after_node_failure
        )
        self.config = ConfigCache(
            services.redis_open,
            check_every=settings.config_check_seconds,
            guard=self.breakers,
        )
        self.config.on_erasure.append(services.render_cache.local.drop_personal)
        self.engine = DecisionEngine(
            totals=CachedTotals(
                services.stats, seconds=5.0, client=services.redis_open, guard=self.breakers
            ),
            block_version=self.config.block_version,
        )
        self.topology = TopologyRefresh((services.redis_open, services.redis_bytes, services.redis))
        self.drawing = Drawing(services, metrics, self.breakers)
        self.config.on_erasure.append(self.drawing.keys.clear)
        self.recorder = Recorder(
            services,
            self._lost,
            background=settings.record_in_background,
            guard=self.breakers,
        )
        self.config.on_erasure.append(self.recorder.views.clear)

    # the guard

    def guarded(self, route: str, attempt: Callable[[], T], fallback: Callable[[str], T]) -> T:
        """``attempt()``, or on any failure ``fallback(reason)``; never raises. Redis failures
        are counted per ``route`` and logged once per breaker window (by the breakers)."""
        try:
            return attempt()
        except CircuitOpen:
            return fallback(SKIPPED)
        except REDIS_FAILURES as exc:
            self.metrics.redis_error(route)
            if not isinstance(exc, NodeFailure):
                log.warning("%s: redis %s", route, type(exc).__name__)
            return fallback(failure_reason(exc))
        except Exception:
            log.exception("%s failed; answering the fallback", route)
            return fallback("error")

    def _after_node_failure(self, node: str) -> None:
        """A node's breaker window opened: close its pooled connections (they may all be
        broken, so that the probe after the window connects afresh: to a new primary, after a
        Sentinel failover), and on a cluster ask again, in the background, which node serves
        which slots (a replica may have taken the failed node's slots over)."""
        services = self.services
        clients = (services.redis_open, services.redis_bytes, services.redis)
        for client in clients:
            if isinstance(client, LazyCluster) and not client.built:
                continue
            cluster = cluster_of(client)
            if cluster is None:
                client.connection_pool.disconnect()
                continue
            found = cluster.get_node(node_name=node)
            if found is not None and found.redis_connection is not None:
                found.redis_connection.connection_pool.disconnect()
        if any(isinstance(client, LazyCluster) for client in clients):
            self.topology.refresh_soon()

    # identify and load

    def identify(self, token: str | None, subscriber_key: str | None = None) -> Identity:
        """Who the URL names (not yet checked against the campaign's rules)."""
        return identify(self.services.signer, token, subscriber_key)

    def classify_image_request(
        self, method: str, headers: Mapping[str, str], remote_addr: str | None
    ) -> ClientInfo:
        """The client class of an image request (``remote_addr`` is only compared with Apple's
        MPP ranges, never kept)."""
        return classify_open_request(method, headers, remote_addr, self.mpp_ranges or ())

    def recorded_send(self, campaign_id: str, send_id: str | None) -> Send | None:
        """The recorded send a URL's ``s=`` names, if any."""
        if not send_id or not valid_send_id(send_id):
            return None
        return self.config.send(campaign_id, send_id)

    def visitor(
        self,
        who: Identity,
        campaign: Campaign | None,
        now: dt.datetime,
        *,
        blocks: Sequence[tuple[str, str]] = (),
        ranking_field: str | None = None,
        click: ClickMark | None = None,
    ) -> Visitor:
        """The open's recipient and their data, read in one round trip (nothing read for a bad
        token, or an unsigned key the campaign does not accept)."""
        accepted = who.signed or (campaign is not None and campaign.subscriber_keys)
        if who.recipient_id is None or not accepted:
            return Visitor(None, who.signed)
        read = read_recipient(
            self.services.redis_open,
            who.recipient_id,
            now,
            tombstones=self.services.tombstones,
            max_ages=self.services.settings.max_score_ages,
            guard=self.breakers,
            blocks=blocks,
            ranking_field=ranking_field,
            click=click,
            passengers=self.recorder.ride_along,
        )
        if read.erased:
            return Visitor(None, who.signed, read)
        return Visitor(who.recipient_id, who.signed, read)

    def load_block(
        self,
        campaign_id: str,
        block_id: str,
        who: Identity,
        now: dt.datetime,
        *,
        click: ClickMark | None = None,
    ) -> BlockOpen:
        """A block's configuration and its recipient's data for one open (or click)."""
        self.config.refresh()
        campaign, block = self.config.campaign_and_block(campaign_id, block_id)
        visitor = self.visitor(who, campaign, now, blocks=[(campaign_id, block_id)], click=click)
        return BlockOpen(
            campaign_id,
            block_id,
            campaign,
            block,
            visitor,
            self.snapshot(campaign, block, visitor, campaign_id, block_id),
        )

    def snapshot(
        self,
        campaign: Campaign | None,
        block: Block | None,
        visitor: Visitor,
        campaign_id: str,
        block_id: str,
    ) -> Snapshot:
        """What the decision engine reads for one block."""
        read = visitor.read
        return Snapshot(
            campaign,
            block,
            read.data,
            read.decisions.get((campaign_id, block_id)),
            erased=read.erased,
            live=self.config.live(),
        )

    # decide and draw

    def decide(
        self, opened: BlockOpen, client: ClientInfo, now: dt.datetime, send: str | None = None
    ) -> Decided:
        """The decision for this open (of the newsletter ``send``, if any; the block must be
        known)."""
        decision, shown = self.engine.decide(
            opened.snapshot, opened.visitor.recipient_id, now, client, send
        )
        self.metrics.decision(opened.campaign_id, opened.block_id, decision.variant_id)
        return Decided(decision, shown)

    def draw(
        self,
        decided: Decided,
        visitor: Visitor,
        snapshot: Snapshot,
        now: dt.datetime,
        options: ImageOptions,
    ) -> ImageAnswer:
        """The image of a decision: its variant's content, else the block's fallback."""
        shown = decided.shown
        decision = decided.decision
        variant = shown.variant(decision.variant_id) if decision.variant_id else None
        if variant is None:
            return self.block_fallback(shown, decision.reason, now, options)
        try:
            return self.drawing.render(
                shown.width,
                shown.height,
                variant.content,
                visitor.profile,
                {LIVE_FIELD: snapshot.fresh_live(now)},
                now,
                options,
                personalised=True,
                first_open=decision.first_open_at,
            )
        except ContentUnavailable as missing:
            log.info("content unavailable for %s/%s: %s", shown.campaign_id, shown.id, missing)
            return self.block_fallback(shown, "content unavailable", now, options)
        except Exception:
            log.exception(
                "renderer failed for %s/%s; serving the fallback", shown.campaign_id, shown.id
            )
            return self.block_fallback(shown, "render error", now, options)

    def alt(self, decided: Decided, visitor: Visitor, snapshot: Snapshot, now: dt.datetime) -> str:
        """The alt text of what ``draw`` shows for the decision, from the same fields
        (``server.open.alt_text``)."""
        return shown_alt(
            decided.shown,
            decided.decision.variant_id,
            {**visitor.profile, LIVE_FIELD: snapshot.fresh_live(now)},
            self.services.settings.max_text_length,
        )

    def block_fallback(
        self, block: Block, reason: str, now: dt.datetime, options: ImageOptions
    ) -> ImageAnswer:
        """The block's fallback image, counted with ``reason``."""
        label = f"{block.campaign_id}/{block.id}"
        return self.drawing.fallback(
            block.width, block.height, block.fallback, label, now, reason, options
        )

    def known_block_fallback(
        self, campaign_id: str, block_id: str, reason: str, options: ImageOptions
    ) -> ImageAnswer:
        """After a failure: the fallback of the block as this worker last knew it, else the
        last-resort pixel."""
        block = self.config.last_known_block(campaign_id, block_id)
        if block is None:
            self.metrics.fallback("last resort")
            return LAST_RESORT
        return self.block_fallback(block, reason, self.services.clock(), options)

    # blocks: image and click

    def block_image(
        self,
        campaign_id: str,
        block_id: str,
        who: Identity,
        client: ClientInfo,
        now: dt.datetime,
        *,
        options: ImageOptions = PLAIN,
        send_id: str | None = None,
        record: bool = True,
    ) -> ImageAnswer:
        """The block's image for this open, decided now and recorded (attributed to the send
        the URL names, if recorded); ``record=False`` for previews. Never raises."""

        def attempt() -> ImageAnswer:
            opened = self.load_block(campaign_id, block_id, who, now)
            if opened.block is None:
                log.info("image for unknown block %s/%s", campaign_id, block_id)
                self.metrics.fallback("unknown block")
                return LAST_RESORT
            send = self.recorded_send(campaign_id, send_id)
            decided = self.decide(opened, client, now, send.id if send else None)
            recipient_id = opened.visitor.recipient_id
            decision = decided.decision
            early: Sent | None = None  # a person's new decision, sent before the render
            sent_early = decision.human and to_store(opened.previous, decision)
            if record and recipient_id is not None and sent_early:
                early = self.send_decision(recipient_id, decision)
            answer = self.draw(decided, opened.visitor, opened.snapshot, now, options)
            shown = what_was_shown(decision, answer)
            stored = self.decision_stored(early)  # False if it failed: no second try
            if record and recipient_id is not None:
                store = to_store(opened.previous, shown)
                if store and shown.human:
                    if shown is not decision or not sent_early:  # a fallback replaces it
                        stored = self.store_decision_now(recipient_id, shown)
                    store = not stored
                self.record(
                    recipient_id,
                    shown,
                    "open",
                    client.client,
                    client.open_kind,
                    store_decision=store,
                    send=send.id if send else None,
                )
            return answer

        return self.guarded(
            "open",
            attempt,
            lambda reason: self.known_block_fallback(campaign_id, block_id, reason, options),
        )

    def block_click(
        self,
        campaign_id: str,
        block_id: str,
        who: Identity,
        method: str,
        headers: Mapping[str, str],
        send_id: str | None = None,
    ) -> Redirect:
        """Where a click on the block goes: what the recipient's open showed, else what they
        would be shown now; a person's click carries an attribution token. Bot clicks (by
        their headers, or by their context: right after the send, every link at once) are
        counted as such and never store a decision. Never raises."""
        now = self.services.clock()
        client = classify_open(headers.get("User-Agent"))

        def attempt() -> Redirect:
            send = self.recorded_send(campaign_id, send_id)
            mark = ClickMark(campaign_id, send.id if send else None, block_id, now.timestamp())
            opened = self.load_block(campaign_id, block_id, who, now, click=mark)
            recipient_id = opened.visitor.recipient_id
            verdict = self.classify_click(opened.visitor, campaign_id, send, method, headers, now)
            kind = "bot" if verdict.bot else "human"
            previous = opened.previous
            if previous is not None:
                shown = (
                    self.config.block_version(opened.block, previous.version)
                    if opened.block is not None
                    else self.config.past_block(campaign_id, block_id, previous.version)
                )
                if shown is not None:
                    url = shown.target_url(previous.variant_id)
                    ref = self.click_ref(recipient_id, url, human=not verdict.bot)
                    if recipient_id is not None:
                        self.record(
                            recipient_id,
                            previous,
                            "click",
                            client.client,
                            kind,
                            store_decision=False,
                            send=send.id if send else None,
                            click_ref=ref,
                        )
                    return self.redirect(url, ref)
            if opened.block is None:
                return Redirect(self.default_url())
            decided = self.decide(opened, client, now)
            url = decided.shown.target_url(decided.decision.variant_id)
            ref = self.click_ref(recipient_id, url, human=not verdict.bot)
            if recipient_id is not None:
                self.record(
                    recipient_id,
                    decided.decision,
                    "click",
                    verdict.client,
                    kind,
                    store_decision=not verdict.bot,
                    send=send.id if send else None,
                    click_ref=ref,
                )
            return self.redirect(url, ref)

        def fallback(reason: str) -> Redirect:
            block = self.config.last_known_block(campaign_id, block_id)
            return Redirect(block.fallback.target_url if block is not None else self.default_url())

        return self.guarded("click", attempt, fallback)

    def click_ref(self, recipient_id: str | None, url: str, *, human: bool) -> ClickRef | None:
        """A new attribution reference for a person's click of a known recipient to ``url``
        (None for a bot's click, when redirects carry no token, or when ``url`` is not on a
        host that may receive one)."""
        settings = self.services.settings
        if recipient_id is None or not human or not settings.click_token_param:
            return None
        if not token_host(url, settings.click_token_host_list):
            return None
        return ClickRef.new(recipient_id)

    def redirect(self, url: str, ref: ClickRef | None) -> Redirect:
        """The redirect to ``url``, with the attribution token of ``ref`` (if any) added to
        its query."""
        if ref is None:
            return Redirect(url)
        token = self.services.signer.sign_click(ref)
        return Redirect(with_param(url, self.services.settings.click_token_param, token), token)

    def classify_click(
        self,
        visitor: Visitor,
        campaign_id: str,
        send: Send | None,
        method: str,
        headers: Mapping[str, str],
        now: dt.datetime,
    ) -> ClickInfo:
        """A click's verdict: by its headers, and for a known recipient also by its context
        (how soon after the send; whether it completes every link of the email at once)."""
        if visitor.recipient_id is None:
            return classify_click(method, headers)
        newsletter = self.config.newsletter(campaign_id)
        links = (
            len(newsletter.blocks) + len(newsletter.slots)
            if newsletter is not None
            else self.config.block_count(campaign_id)
        )
        context = ClickContext(
            (now - send.send_time).total_seconds() if send is not None else None,
            visitor.read.earlier_clicks,
            links,
        )
        return classify_click_in_context(method, headers, context, self.services.settings, now)

    def default_url(self) -> str:
        """Where a click goes when nothing about the block is known."""
        settings = self.services.settings
        return settings.fallback_url or f"{settings.public_url}/gone"

    # recording

    def store_decision_now(self, recipient_id: str, decision: Decision) -> bool:
        """Store a person's new decision before answering (``Recorder.send_decision``, its
        reply read at once); whether it was stored (if not, it goes with the open's record).
        Never raises: a Redis failure is counted and the record carries the decision."""
        return self.decision_stored(self.send_decision(recipient_id, decision))

    def send_decision(self, recipient_id: str, decision: Decision) -> Sent | None:
        """Send the write of a person's new decision, its reply read before answering
        (``decision_stored``), so that its round trip overlaps the render. Never raises: None
        when recording inline (the record stores it) or when Redis fails (counted)."""
        try:
            return self.recorder.send_decision(recipient_id, decision)
        except UNAVAILABLE as exc:
            self._decision_failed(exc)
            return None

    def decision_stored(self, sent: Sent | None) -> bool:
        """Whether the decision write ``sent`` went through (its reply is read now). Never
        raises: a failure is counted, and the open's record then carries the decision."""
        if sent is None:
            return False
        try:
            sent.replies()
        except UNAVAILABLE as exc:
            self._decision_failed(exc)
            return False
        return True

    def _decision_failed(self, error: BaseException) -> None:
        if not isinstance(error, CircuitOpen):
            self.metrics.redis_error("decision")

    def record(
        self,
        recipient_id: str,
        shown: Decision,
        event: str,
        client: str,
        kind: str,
        *,
        store_decision: bool,
        send: str | None = None,
        click_ref: ClickRef | None = None,
        persona: str | None = None,
    ) -> None:
        """Store the decision (with ``store_decision``), append the event and count it, and
        keep a person's click or open as the recipient's last touch: one batch, inline or in
        the background; a click's attribution reference is written before its redirect
        answers. Never fails the request: a loss is counted."""
        record = Record(
            recipient_id=recipient_id,
            pseudonym=self.services.signer.pseudonym(recipient_id),
            shown=shown,
            event=event,
            client=client,
            kind=kind,
            store_decision=store_decision,
            send=send,
            at=self.services.clock(),
            click_ref=click_ref,
            persona=persona,
        )
        self.recorder.submit(self.recorder.store_click_ref(record))

    def _lost(self, records: Sequence[Record], error: Exception | None) -> None:
        """The recorder could not write ``records``: count them (the breakers already heard
        of a node that failed)."""
        if error is not None and isinstance(error, REDIS_FAILURES):
            self.metrics.redis_error("record")
        for record in records:
            self.metrics.event_lost(record.event)
        why = "the queue is full" if error is None else type(error).__name__
        log.warning("could not record %d event(s): %s", len(records), why)
