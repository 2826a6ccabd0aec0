"""What a click's context says about a bot: how soon after its send it came, and whether it
completes "every link of the email clicked at once". The open core gathers the context in its
one read (the recipient's clicks of the last minute, this one added) and from the worker's
configuration (the send's time, the links in the email)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from models.email_clients import ClickInfo, classify_click, is_click_burst
from server.config import Settings


@dataclass(frozen=True)
class ClickContext:
    """The send-relative facts about one click."""

    seconds_since_send: float | None
    earlier_clicks: tuple[float, ...]
    links_in_email: int


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
