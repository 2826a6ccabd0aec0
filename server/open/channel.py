"""Cross-channel endpoints (``/x/v1``): the website and the app tell the email's story.

A page or app sends the recipient's signed token and a ``channel`` API key and gets, as JSON,
what this recipient's email showed for a block (the stored decision the click follows), or,
when no email decided yet, what the same engine decides now, stored so that a later open with
``lock_on_first_open`` and the click agree. The newsletter's slots come from the same stored
ranking as the slot images. A missing or bad token gets the generic answer, never personal data.

A channel key is meant to be embedded in a page, so it grants nothing else; a key with more
scopes is refused on requests from a browser (they carry ``Origin``) but may be used server-side.
CORS answers only the origins in ``BLANCO_CHANNEL_ORIGINS``, each echoed exactly (never ``*``).

Channel calls record a ``view`` event in the campaign's stream, never an open or a click: the
counters and reports stay email-only. Their decisions carry the client class ``web``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from models.api_keys import ApiKey
from models.campaigns.specs import Block, Variant
from models.decision import Decision, decision_store_commands
from models.email_clients import ClientInfo, classify_open
from models.errors import BlancoError, Forbidden, NotFound
from models.newsletter.sends import valid_send_id
from models.storage.batch import UNAVAILABLE, Batch
from models.storage.breakers import CircuitOpen
from server.api_operations import authorize
from server.open.answers import LAST_RESORT, ImageAnswer, ImageOptions
from server.open.core import Decided, OpenCore
from server.open.routes import image_options, open_core, slot_server
from server.open.slot_views import pictures, slot_item
from server.problems import problem_response, retry_after
from server.services import services
from server.tokens import Identity
from server.urls import SEND_PARAM, TOKEN_PARAM

log = logging.getLogger(__name__)

PREFIX = "/x/v1"
bp = Blueprint("channel", __name__, url_prefix=PREFIX)

CHANNEL_CLIENT = "web"
"""The client class of decisions made for the website or app (conditions may target it)."""
VIEW_EVENT = "view"
"""The event type of channel calls: in the campaign's stream, never counted as an open."""
CACHE_CONTROL = "no-store, private"
PREFLIGHT_MAX_AGE_SECONDS = 3600

Source = Literal["email", "decided"]


class ChannelUnavailable(BlancoError):
    """Redis is away: the page shows its own default content and may ask again later."""

    status_code = 503
    title = "Service unavailable"


@dataclass(frozen=True)
class ChannelAnswer:
    """What a block shows this recipient across channels, and where that came from."""

    decision: Decision
    shown: Block
    """The block version the decision refers to."""
    source: Source
    token: str | None
    """The verified token (None for the generic answer)."""
    alt: str
    """What the decision's image shows, in words (``OpenCore.alt``)."""

    @property
    def variant(self) -> Variant | None:
        """The variant shown, None for the fallback (also when it left that version)."""
        variant_id = self.decision.variant_id
        return self.shown.variant(variant_id) if variant_id else None

    def as_dict(self, public_url: str) -> dict[str, Any]:
        """The JSON document of the decision endpoint."""
        variant = self.variant
        campaign_id, block_id = self.shown.campaign_id, self.shown.id
        image = f"{public_url}{channel_image_path(campaign_id, block_id)}"
        if self.token is not None:
            image += f"?{TOKEN_PARAM}={quote(self.token, safe='')}"
        return {
            "campaign": campaign_id,
            "block": block_id,
            "variant": variant.id if variant else None,
            "version": self.decision.version,
            "source": self.source,
            "decided_at": self.decision.decided_at.isoformat(),
            "alt": self.alt,
            "target_url": self.shown.target_url(self.decision.variant_id),
            "image_url": image,
        }


def channel_image_path(campaign_id: str, block_id: str) -> str:
    """Path of the image that shows a recipient's stored decision without recording an open."""
    return f"{PREFIX}/campaigns/{campaign_id}/blocks/{block_id}/image.png"


class ChannelDecisions:
    """Answers the cross-channel endpoints with the open core's one pass."""

    def __init__(self, core: OpenCore) -> None:
        self.core = core
        self.services = core.services

    def decision(
        self, campaign_id: str, block_id: str, token: str | None, user_agent: str | None
    ) -> ChannelAnswer:
        """What the email showed, else a decision made (and stored) now; NotFound for an
        unknown campaign or block. Raises Redis failures (and CircuitOpen)."""
        core = self.core
        now = self.services.clock()
        opened = core.load_block(
            campaign_id, block_id, Identity(self.services.signer.verify(token)), now
        )
        block = opened.block
        if block is None or opened.campaign is None:
            raise NotFound(f"no block {block_id!r} in campaign {campaign_id!r}")
        recipient_id = opened.visitor.recipient_id
        verified = token if recipient_id is not None else None
        previous = opened.previous
        if recipient_id is not None and previous and previous.client != CHANNEL_CLIENT:
            shown = core.config.block_version(block, previous.version)
            if shown is not None:
                self._record(recipient_id, previous, store=False)
                alt = core.alt(Decided(previous, shown), opened.visitor, opened.snapshot, now)
                return ChannelAnswer(previous, shown, "email", verified, alt)
        client = ClientInfo(CHANNEL_CLIENT, classify_open(user_agent).device, "unknown")
        decided = core.decide(opened, client, now)
        if recipient_id is not None:
            self._record(recipient_id, decided.decision, store=True)
        alt = core.alt(decided, opened.visitor, opened.snapshot, now)
        return ChannelAnswer(decided.decision, decided.shown, "decided", verified, alt)

    def image(
        self, campaign_id: str, block_id: str, token: str | None, options: ImageOptions
    ) -> ImageAnswer:
        """The stored decision's image (the fallback when there is none); decides and records
        nothing, so a page showing it counts no open. Never raises."""
        core = self.core
        now = self.services.clock()

        def attempt() -> ImageAnswer:
            who = Identity(self.services.signer.verify(token))
            opened = core.load_block(campaign_id, block_id, who, now)
            block = opened.block
            if block is None:
                return LAST_RESORT
            previous = opened.previous
            shown = core.config.block_version(block, previous.version) if previous else None
            if previous is None or shown is None:
                return core.block_fallback(block, "no decision", now, options)
            if shown.variant(previous.variant_id or "") is None:
                return core.block_fallback(shown, "decided fallback", now, options)
            return core.draw(
                Decided(previous, shown), opened.visitor, opened.snapshot, now, options
            )

        return core.guarded(
            "channel",
            attempt,
            lambda reason: core.known_block_fallback(campaign_id, block_id, reason, options),
        )

    def _record(self, recipient_id: str, decision: Decision, *, store: bool) -> None:
        """Store the decision now (with ``store``: the page fetches its image right after, and
        that image shows the stored decision), then append a ``view`` event in the background;
        the open and click counters are left alone. A failed store raises; a failed event is
        counted."""
        if store:
            writing = Batch(self.services.redis_open, guard=self.core.breakers)
            self.services.tombstones.queue_unless_erased(
                writing,
                recipient_id,
                decision_store_commands(
                    recipient_id, decision, self.services.settings.decision_ttl_seconds
                ),
            )
            writing.execute()
        self.core.record(
            recipient_id,
            decision,
            VIEW_EVENT,
            CHANNEL_CLIENT,
            "channel",
            store_decision=False,
        )


def channel() -> ChannelDecisions:
    """The cross-channel service over the app's open core (it holds no state)."""
    return ChannelDecisions(open_core())


def authorize_channel() -> None:
    """A key with the ``channel`` scope (``admin`` too). A browser (it sends ``Origin``) must
    be on an allowed origin and use a channel-only key: a key in a page is public."""
    authorize("channel")
    key: ApiKey = g.api_key
    if request.headers.get("Origin") is None:
        return
    if _allowed_origin() is None:
        raise Forbidden("this origin may not call Blanco (see BLANCO_CHANNEL_ORIGINS)")
    if set(key.scopes) != {"channel"}:
        raise Forbidden(
            "a key used from a web page is public: use one with only the 'channel' scope"
        )


def _unavailable(what: str, exc: BaseException) -> Response:
    """503 after a Redis failure (the page shows its own default); the breakers already know."""
    if not isinstance(exc, CircuitOpen):
        open_core().metrics.redis_error("channel")
        log.warning("channel %s: redis %s", what, type(exc).__name__)
    response = problem_response(
        ChannelUnavailable("Blanco cannot answer right now; show your default content")
    )
    window = services().settings.redis_retry_after_seconds
    response.headers["Retry-After"] = str(retry_after(window))
    return response


# CORS and caching for every channel response


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    allowed = services().settings.channel_origins
    return origin if origin is not None and origin in allowed else None


@bp.before_request
def preflight() -> ResponseReturnValue | None:
    """Answer CORS preflight requests (no key needed: browsers send none with them)."""
    if request.method != "OPTIONS":
        return None
    response = Response(status=204)
    if _allowed_origin() is not None:
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return response


@bp.after_request
def cors_and_caching(response: Response) -> Response:
    """Echo an allowed origin (and only then), and keep answers out of every cache."""
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


# routes


@bp.get("/campaigns/<campaign_id>/blocks/<block_id>/decision")
def block_decision(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """What this recipient's email showed for the block, or what the engine decides now."""
    authorize_channel()
    try:
        answer = channel().decision(
            campaign_id,
            block_id,
            request.args.get(TOKEN_PARAM),
            request.headers.get("User-Agent"),
        )
    except UNAVAILABLE as exc:
        return _unavailable("decision", exc)
    return jsonify(answer.as_dict(services().settings.public_url))


@bp.get("/campaigns/<campaign_id>/blocks/<block_id>/image.<any(png, gif, jpg, webp):extension>")
def block_image(campaign_id: str, block_id: str, extension: str) -> Response:
    """The image of what the decision endpoint answered, for ``<img>`` on a page (no key: the
    signed token is the credential, as in the email); records no open."""
    answer = channel().image(campaign_id, block_id, request.args.get(TOKEN_PARAM), image_options())
    response = Response(answer.image.body, mimetype=answer.image.media_type)
    response.headers["ETag"] = answer.etag
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.vary.add("Accept")
    if answer.fallback_reason:
        response.headers["X-Blanco-Fallback"] = answer.fallback_reason
    return response


@bp.get("/campaigns/<campaign_id>/slots")
def newsletter_slots(campaign_id: str) -> ResponseReturnValue:
    """The items this recipient's newsletter shows for the send, slot by slot."""
    authorize_channel()
    token, send = request.args.get(TOKEN_PARAM), request.args.get(SEND_PARAM)
    found = services()
    core = open_core()
    slots = slot_server()
    try:
        now = found.clock()
        opened = slots.load(campaign_id, send, Identity(found.signer.verify(token)), now)
        page = slots.page(opened, now)
        assets = pictures(core.config, page.contents) if page else {}
    except UNAVAILABLE as exc:
        return _unavailable("slots", exc)
    if page is None:
        raise NotFound(f"campaign {campaign_id!r} has no newsletter")
    public = found.settings.public_url
    return jsonify(
        {
            "campaign": campaign_id,
            "send": send if send and valid_send_id(send) else None,
            "generic": all(c.generic for c in page.contents),
            "slots": [
                slot_item(
                    number,
                    content,
                    assets,
                    # the site links straight to the item: a site visit is not an email click
                    content.item.url if content.item else content.slot.fallback.target_url,
                    public,
                    found.settings.max_text_length,
                )
                for number, content in enumerate(page.contents, start=1)
            ],
        }
    )
