"""What a click's context says about a bot: how soon after its send it came, and whether it
completes "every link of the email clicked at once". One pipelined round-trip per click with a
verified recipient: the send's time, the links in the email, and the recipient's clicks of the
last minute (this one added)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

import redis

from models import keys
from models.email_clients import ClickInfo, classify_click, is_click_burst
from models.newsletter_store import parse_newsletter
from models.sends import Send
from server.config import Settings
from server.services import Services

KEPT_SECONDS = 60
"""How long a click is remembered for burst detection."""


@dataclass(frozen=True)
class ClickContext:
    """The send-relative facts about one click."""

    seconds_since_send: float | None
    earlier_clicks: tuple[float, ...]
    links_in_email: int


def click_context(
    client: redis.Redis,
    recipient_id: str,
    campaign_id: str,
    send_id: str | None,
    link: str,
    now: dt.datetime,
) -> ClickContext:
    """Read the click's context and remember the click (one pipelined round-trip)."""
    stamp = now.timestamp()
    scope = f"{campaign_id}|{send_id or '-'}|"
    key = keys.recent_clicks(recipient_id)
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.send(campaign_id, send_id or "-"))
    pipe.get(keys.newsletter(campaign_id))
    pipe.scard(keys.block_index(campaign_id))
    pipe.zremrangebyscore(key, "-inf", stamp - KEPT_SECONDS)
    pipe.zrangebyscore(key, stamp - KEPT_SECONDS, "+inf", withscores=True)
    pipe.zadd(key, {scope + link: stamp})
    pipe.expire(key, KEPT_SECONDS * 2)
    send_document, newsletter_document, blocks, _, recent, _, _ = pipe.execute()
    send = Send.model_validate_json(send_document) if send_document else None
    if newsletter_document:
        newsletter = parse_newsletter(newsletter_document)
        links = len(newsletter.blocks) + len(newsletter.slots)
    else:
        links = int(blocks)
    earlier = tuple(
        float(score)
        for member, score in recent
        if str(member).startswith(scope) and str(member) != scope + link
    )
    since = (now - send.send_time).total_seconds() if send is not None else None
    return ClickContext(since, earlier, links)


def classify_click_in_context(
    method: str,
    headers: Mapping[str, str],
    context: ClickContext | None,
    settings: Settings,
    now: dt.datetime,
) -> ClickInfo:
    """``classify_click`` with the send-relative rules when the context is known."""
    if context is None:
        return classify_click(method, headers)
    verdict = classify_click(
        method, headers, context.seconds_since_send, settings.scanner_click_seconds
    )
    burst = is_click_burst(
        context.earlier_clicks,
        now.timestamp(),
        context.links_in_email,
        settings.click_burst_seconds,
    )
    if burst and not verdict.bot:
        return replace(verdict, bot=True, reason="every link at once")
    return verdict


def classify_click_of(
    services: Services,
    recipient_id: str | None,
    campaign_id: str,
    send_id: str | None,
    link: str,
    method: str,
    headers: Mapping[str, str],
    now: dt.datetime,
) -> ClickInfo:
    """Classify a click on ``link`` (a block id or ``slot-<n>``): by its headers, and for a
    verified recipient also by its context, which this click joins."""
    context = (
        click_context(services.redis, recipient_id, campaign_id, send_id, link, now)
        if recipient_id is not None
        else None
    )
    return classify_click_in_context(method, headers, context, services.settings, now)
