"""The open-time path: resolve the recipient, load, decide, render, record, in one pass.

Nothing here raises to the route. Any failure (bad token, Redis down or slow, a renderer
exception) ends in the block's fallback, or, when not even the block is known, in a
last-resort image or URL. Failures are logged without personal data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
from PIL import Image

from models.campaigns import Block, FallbackContent
from models.decision import Decision, Snapshot
from models.email_clients import (
    AddressRanges,
    ClientInfo,
    classify_open,
    classify_open_request,
)
from models.live_data import LiveFields
from models.recipient_reads import RecipientData
from models.sends import RecordedSends
from renderers.base import ContentUnavailable, RenderedImage, RenderRequest
from renderers.fallback import TRANSPARENT_PNG
from renderers.registry import ContentParams, renderer_for
from renderers.templating import LIVE_FIELD
from server.breaker import CircuitOpen, RedisBreaker
from server.click_signals import classify_click_of
from server.metrics import Metrics
from server.recorder import Record, Recorder
from server.services import Services
from server.tokens import identify

log = logging.getLogger(__name__)

REDIS_FAILURES = (redis.RedisError, OSError)
UNAVAILABLE = (*REDIS_FAILURES, CircuitOpen)
"""Redis failed, or is skipped after a recent failure: the caller answers without it."""


MAX_SCALE = 3
SKIPPED = "redis: circuit open"
"""The fallback reason of a request that skipped Redis after a recent failure."""


@dataclass(frozen=True)
class ImageOptions:
    """How the client wants the image: device pixel ratio and whether it takes WebP."""

    scale: int = 1
    accepts_webp: bool = False

    @classmethod
    def from_request(cls, dpr: str | None, accept: str | None) -> ImageOptions:
        """Options from the ``dpr`` query parameter and the ``Accept`` header (lenient)."""
        scale = int(dpr) if dpr and dpr.isascii() and dpr.isdigit() and len(dpr) < 3 else 1
        return cls(min(max(scale, 1), MAX_SCALE), "image/webp" in (accept or ""))


@dataclass(frozen=True)
class ImageAnswer:
    """What the image route sends."""

    image: RenderedImage
    etag: str
    personalised: bool
    fallback_reason: str | None = None


def changed(previous: Decision | None, decision: Decision) -> bool:
    """Whether ``decision`` must be stored: a re-open that shows the same content to the same
    client class needs no write (the stored one still says what the click follows)."""
    if previous is None:
        return True
    same = (previous.variant_id, previous.version, previous.client, previous.holdout)
    return same != (decision.variant_id, decision.version, decision.client, decision.holdout)


class KnownBlocks:
    """The last block versions seen, so fallbacks can still be served while Redis is away."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._blocks: OrderedDict[tuple[str, str], Block] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, block: Block) -> None:
        """Keep ``block`` as the last known version."""
        with self._lock:
            self._blocks[(block.campaign_id, block.id)] = block
            self._blocks.move_to_end((block.campaign_id, block.id))
            while len(self._blocks) > self.size:
                self._blocks.popitem(last=False)

    def get(self, campaign_id: str, block_id: str) -> Block | None:
        """The last known version, if any."""
        with self._lock:
            return self._blocks.get((campaign_id, block_id))


class DecodedAssets:
    """Decoded uploaded images by id; ids are content hashes, so entries never go stale."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, asset_id: str) -> Image.Image | None:
        """The decoded image, if held."""
        with self._lock:
            return self._images.get(asset_id)

    def put(self, asset_id: str, data: bytes) -> Image.Image:
        """Decode ``data`` (validated at upload) and keep it."""
        image = Image.open(io.BytesIO(data))
        image.load()
        with self._lock:
            self._images[asset_id] = image
            while len(self._images) > self.size:
                self._images.popitem(last=False)
        return image


def _etag(data: bytes | str) -> str:
    raw = data if isinstance(data, bytes) else data.encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


LAST_RESORT = ImageAnswer(
    RenderedImage(TRANSPARENT_PNG, "image/png"), _etag(TRANSPARENT_PNG), False, "last resort"
)


class OpenTime:
    """Serves image and click requests for one app."""

    def __init__(
        self, services: Services, metrics: Metrics, mpp_ranges: AddressRanges | None = None
    ) -> None:
        self.services = services
        self.metrics = metrics
        self.breaker = RedisBreaker(
            services.settings.redis_retry_after_seconds, on_open=self._drop_connections
        )
        self.known_blocks = KnownBlocks()
        self.decoded_assets = DecodedAssets()
        self.mpp_ranges = mpp_ranges
        self.sends = RecordedSends(services.redis)
        self.recorder = Recorder(
            services, self._lost, background=services.settings.record_in_background
        )

    def _drop_connections(self) -> None:
        """Close the pooled connections (after a failure, they may all be broken)."""
        for client in (self.services.redis, self.services.redis_bytes):
            client.connection_pool.disconnect()

    # images

    def image(
        self,
        campaign_id: str,
        block_id: str,
        token: str | None,
        method: str,
        headers: Mapping[str, str],
        remote_addr: str | None = None,
        options: ImageOptions = ImageOptions(),
        send_id: str | None = None,
        subscriber_key: str | None = None,
    ) -> ImageAnswer:
        """The image for this open, decided now and recorded (attributed to the newsletter
        send the URL names, if any); never raises. Without a genuine token, an ESP subscriber
        key counts where the campaign allows it (restricted content).

        ``remote_addr`` is only compared with Apple's MPP ranges, never kept.
        """
        client = classify_open_request(method, headers, remote_addr, self.mpp_ranges or ())
        who = identify(self.services.signer, token, subscriber_key)
        return self.image_for(
            campaign_id,
            block_id,
            who.recipient_id,
            client,
            self.services.clock(),
            options=options,
            send_id=send_id,
            signed=who.signed,
        )

    def image_for(
        self,
        campaign_id: str,
        block_id: str,
        recipient_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        *,
        options: ImageOptions = ImageOptions(),
        record: bool = True,
        send_id: str | None = None,
        signed: bool = True,
    ) -> ImageAnswer:
        """The image for a (verified) recipient at ``now``; ``record=False`` for previews.
        ``signed=False``: the id is an unsigned subscriber key (see ``_load``). The open is
        attributed to ``send_id`` only if that send was recorded."""
        block: Block | None = None
        try:
            snapshot, recipient_id = self._load(campaign_id, block_id, recipient_id, now, signed)
            block = snapshot.block
            if block is None:
                return self._unknown_block(campaign_id, block_id)
            decision, shown = self.services.engine.decide(snapshot, recipient_id, now, client)
            self.metrics.decision(campaign_id, block_id, decision.variant_id)
            answer = self._render_decision(
                decision, shown or block, snapshot, now, options, with_profile=signed
            )
            if record and recipient_id is not None:
                self.record(
                    recipient_id,
                    decision,
                    "open",
                    client.client,
                    client.open_kind,
                    store_decision=changed(snapshot.previous, decision),
                    send=self.sends.recorded(campaign_id, send_id),
                )
            return answer
        except CircuitOpen:
            return self._fallback_image(campaign_id, block_id, block, SKIPPED, options)
        except REDIS_FAILURES as exc:
            self.breaker.failed(exc)
            self.metrics.redis_error("open")
            reason = f"redis: {type(exc).__name__}"
            return self._fallback_image(campaign_id, block_id, block, reason, options)
        except Exception:
            log.exception("image route failed; serving the fallback")
            return self._fallback_image(campaign_id, block_id, block, "error", options)

    def _load(
        self,
        campaign_id: str,
        block_id: str,
        recipient_id: str | None,
        now: dt.datetime,
        signed: bool = True,
    ) -> tuple[Snapshot, str | None]:
        """The snapshot, and who it is for: nobody when the recipient was erased, or when an
        unsigned subscriber key comes to a campaign that does not allow them."""
        self.breaker.check()
        snapshot = self.services.engine.load(campaign_id, block_id, recipient_id, now)
        self.breaker.succeeded()
        if snapshot.block is not None:
            self.known_blocks.remember(snapshot.block)
        campaign = snapshot.campaign
        refused = not signed and not (campaign is not None and campaign.subscriber_keys)
        if snapshot.erased or refused:
            return replace(snapshot, recipient=RecipientData(), previous=None), None
        return snapshot, recipient_id

    def _unknown_block(self, campaign_id: str, block_id: str) -> ImageAnswer:
        log.info("image for unknown block %s/%s", campaign_id, block_id)
        self.metrics.fallback("unknown block")
        return LAST_RESORT

    def _render_decision(
        self,
        decision: Decision,
        shown: Block,
        snapshot: Snapshot,
        now: dt.datetime,
        options: ImageOptions,
        *,
        with_profile: bool = True,
    ) -> ImageAnswer:
        variant = shown.variant(decision.variant_id) if decision.variant_id else None
        if variant is None:
            return self._render_fallback(shown, now, decision.reason, options)
        try:
            return self.render(
                shown.width,
                shown.height,
                variant.content,
                snapshot.render_fields(now, with_profile),
                now,
                options,
                personalised=True,
                first_open=decision.first_open_at,
            )
        except REDIS_FAILURES:
            raise
        except ContentUnavailable as missing:
            log.info("content unavailable for %s/%s: %s", shown.campaign_id, shown.id, missing)
            return self._render_fallback(shown, now, "content unavailable", options)
        except Exception:
            log.exception(
                "renderer failed for %s/%s; serving the fallback", shown.campaign_id, shown.id
            )
            return self._render_fallback(shown, now, "render error", options)

    def render(
        self,
        width: int,
        height: int,
        params: ContentParams,
        fields: Mapping[str, Any],
        now: dt.datetime,
        options: ImageOptions,
        *,
        personalised: bool,
        first_open: dt.datetime | None = None,
        use_redis: bool = True,
    ) -> ImageAnswer:
        """Render ``params`` at the block size (or take it from the render cache); raises on
        renderer and Redis errors, which callers turn into fallbacks."""
        renderer = renderer_for(params.type)
        request = RenderRequest(
            width=width * options.scale,
            height=height * options.scale,
            fields=fields,
            moment=renderer.moment(params, now),
            scale=options.scale,
            first_open=first_open,
            max_text_length=self.services.settings.max_text_length,
            accepts_webp=options.accepts_webp,
        )
        digest = renderer.cache_key(params, request)
        cache = self.services.render_cache
        if use_redis:
            image, where = cache.lookup(digest)
        else:
            image = cache.local.get(digest)
            where = "hit_local" if image else "miss"
        self.metrics.cache(where)  # type: ignore[arg-type]
        if image is None:
            wanted = renderer.assets_used(params)
            assets = self._assets(wanted, use_redis) if wanted else {}
            request = replace(request, assets=assets)
            started = time.perf_counter()
            image = renderer.render_encoded(params, request)
            self.metrics.observe_render(params.type, time.perf_counter() - started)
            if len(assets) < len(wanted):
                pass  # drawn with a placeholder for a missing image: do not cache that
            elif use_redis:
                cache.put(digest, image)
            else:
                cache.local.put(digest, image)
        return ImageAnswer(image, f'"{digest[:32]}"', personalised)

    def _assets(self, wanted: frozenset[str], use_redis: bool) -> dict[str, Image.Image]:
        """Decoded uploaded images by id (a missing one is simply absent)."""
        found = {i: img for i in wanted if (img := self.decoded_assets.get(i)) is not None}
        missing = wanted - found.keys()
        if missing and use_redis:
            for asset_id, data in self.services.assets.get_bytes(missing).items():
                found[asset_id] = self.decoded_assets.put(asset_id, data)
        return found

    def _render_fallback(
        self,
        block: Block,
        now: dt.datetime,
        reason: str,
        options: ImageOptions,
        use_redis: bool = True,
    ) -> ImageAnswer:
        return self.render_fallback(
            block.width,
            block.height,
            block.fallback,
            f"{block.campaign_id}/{block.id}",
            now,
            reason,
            options,
            use_redis,
        )

    def render_fallback(
        self,
        width: int,
        height: int,
        fallback: FallbackContent,
        label: str,
        now: dt.datetime,
        reason: str,
        options: ImageOptions,
        use_redis: bool = True,
    ) -> ImageAnswer:
        """The fallback content as an image, or the last resort if even that fails; counted
        with ``reason``. ``label`` names the block or slot in logs. Raises only Redis errors."""
        try:
            answer = self.render(
                width,
                height,
                fallback.content,
                {LIVE_FIELD: LiveFields()},  # nothing personal, no live values: reads render empty
                now,
                options,
                personalised=False,
                use_redis=use_redis,
            )
        except REDIS_FAILURES:
            raise
        except Exception:
            log.exception("fallback render failed for %s", label)
            self.metrics.fallback("last resort")
            return LAST_RESORT
        self.metrics.fallback(reason)
        return ImageAnswer(answer.image, answer.etag, False, reason)

    def _fallback_image(
        self,
        campaign_id: str,
        block_id: str,
        block: Block | None,
        reason: str,
        options: ImageOptions,
    ) -> ImageAnswer:
        # Redis failures are logged once per window, by the breaker
        level = logging.DEBUG if reason.startswith("redis") else logging.WARNING
        log.log(level, "serving fallback image for %s/%s: %s", campaign_id, block_id, reason)
        block = block or self.known_blocks.get(campaign_id, block_id)
        if block is None:
            self.metrics.fallback("last resort")
            return LAST_RESORT
        return self._render_fallback(block, self.services.clock(), reason, options, use_redis=False)

    # clicks

    def click(
        self,
        campaign_id: str,
        block_id: str,
        token: str | None,
        method: str,
        headers: Mapping[str, str],
        send_id: str | None = None,
        subscriber_key: str | None = None,
    ) -> str:
        """The URL this click goes to; never raises. Bot clicks (by their headers, or by their
        context: right after the send, every link at once) are counted as such and never store
        a decision."""
        who = identify(self.services.signer, token, subscriber_key)
        recipient_id: str | None = None
        client = classify_open(headers.get("User-Agent"))
        block: Block | None = None
        try:
            now = self.services.clock()
            snapshot, recipient_id = self._load(
                campaign_id, block_id, who.recipient_id, now, who.signed
            )
            send = self.sends.recorded(campaign_id, send_id)
            verdict = classify_click_of(
                self.services, recipient_id, campaign_id, send, block_id, method, headers, now
            )
            bot = verdict.bot
            kind = "bot" if bot else "human"
            block = snapshot.block
            previous = snapshot.previous
            if previous is not None:
                url = self._url_shown(campaign_id, block_id, block, previous)
                if url is not None:
                    if recipient_id is not None:
                        self.record(
                            recipient_id,
                            previous,
                            "click",
                            client.client,
                            kind,
                            store_decision=False,
                            send=send,
                        )
                    return url
            if block is None:
                return self.default_url()
            decision, shown = self.services.engine.decide(
                snapshot, recipient_id, self.services.clock(), client
            )
            shown = shown or block
            if recipient_id is not None:
                self.record(
                    recipient_id,
                    decision,
                    "click",
                    verdict.client,
                    kind,
                    store_decision=not bot,
                    send=send,
                )
            variant = shown.variant(decision.variant_id) if decision.variant_id else None
            return variant.target_url if variant else shown.fallback.target_url
        except CircuitOpen:
            pass
        except REDIS_FAILURES as exc:
            self.breaker.failed(exc)
            self.metrics.redis_error("click")
        except Exception:
            log.exception("click route failed; redirecting to the fallback")
        block = block or self.known_blocks.get(campaign_id, block_id)
        return block.fallback.target_url if block else self.default_url()

    def _url_shown(
        self, campaign_id: str, block_id: str, current: Block | None, previous: Decision
    ) -> str | None:
        """The target URL of what the recipient's open showed, if it can still be found."""
        if current is not None:
            shown = self.services.engine.block_version(current, previous.version)
        else:
            shown = self.services.campaigns.get_block_version(
                campaign_id, block_id, previous.version
            )
        if shown is None:
            return None
        if previous.variant_id is None:
            return shown.fallback.target_url
        variant = shown.variant(previous.variant_id)
        return variant.target_url if variant else shown.fallback.target_url

    def default_url(self) -> str:
        """Where a click goes when nothing about the block is known."""
        settings = self.services.settings
        return settings.fallback_url or f"{settings.public_url}/gone"

    # recording

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
    ) -> None:
        """Store the decision, append the event and count it (one pipelined write, inline or
        batched in the background); ``send`` attributes the event to a newsletter send. Never
        fails the request: a loss is logged and counted."""
        self.recorder.submit(
            Record(
                recipient_id=recipient_id,
                pseudonym=self.services.signer.pseudonym(recipient_id),
                shown=shown,
                event=event,
                client=client,
                kind=kind,
                store_decision=store_decision,
                send=send,
                at=self.services.clock(),
            )
        )

    def _lost(self, records: Sequence[Record], error: Exception | None) -> None:
        """The recorder could not write ``records``: count them, and trip the breaker on a
        Redis failure."""
        if error is not None and isinstance(error, REDIS_FAILURES):
            self.breaker.failed(error)
            self.metrics.redis_error("record")
        for record in records:
            self.metrics.event_lost(record.event)
        why = "the queue is full" if error is None else type(error).__name__
        log.warning("could not record %d event(s): %s", len(records), why)
