"""A recipient's last touches: the last human click and the last human open of any email.

The open path writes them with each record (``touch_commands``), under the recipient's hash tag:
a person's click sets ``last-click``, a person's open (in their own client, or fetched by a
privacy proxy such as Gmail's) sets ``last-view``. A machine's prefetch (Apple's Mail Privacy
Protection) and a link scanner's click set nothing: they say nothing about the person. Each key
lives as long as its attribution window, so an expired touch is simply gone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from models.storage import keys
from models.storage.batch import Command

VIEW_KINDS = frozenset({"human", "proxied_human"})
"""The open kinds that are a person's view (``models.email_clients``)."""
VIEW_REFRESH_SECONDS = 600.0
"""A re-open of the same email block by the same person within this long of the open last
written as their last touch is not written again: re-opens cost the open path nothing, and the
last open is at most this much older than the true one."""


@dataclass(frozen=True)
class Touch:
    """One click or open that a conversion may be attributed to."""

    campaign_id: str
    block_id: str
    variant: str
    """The variant shown (a newsletter slot's item; ``_fallback``, or ``holdout``)."""
    send: str | None
    at: dt.datetime
    holdout: bool = False

    def stored(self) -> str:
        """The stored form."""
        return json.dumps(
            [
                self.campaign_id,
                self.block_id,
                self.variant,
                self.send,
                self.at.timestamp(),
                int(self.holdout),
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_stored(cls, document: str | bytes | None) -> Touch | None:
        """A stored touch, or None (absent, or not readable)."""
        if document is None:
            return None
        try:
            campaign, block, variant, send, at, holdout = json.loads(document)
            return cls(
                campaign, block, variant, send, dt.datetime.fromtimestamp(at, dt.UTC), bool(holdout)
            )
        except (ValueError, TypeError):
            return None

    def as_dict(self) -> dict[str, Any]:
        """As reports and the API show it."""
        return {
            "campaign_id": self.campaign_id,
            "block_id": self.block_id,
            "variant": self.variant,
            "send": self.send,
            "at": self.at.isoformat(),
            "holdout": self.holdout,
        }


def is_touch(event: str, kind: str) -> bool:
    """Whether an event of ``kind`` is a person's click or open."""
    return (event == "click" and kind == "human") or (event == "open" and kind in VIEW_KINDS)


def touch_commands(
    recipient_id: str, event: str, kind: str, touch: Touch, click_ttl: int, view_ttl: int
) -> list[Command]:
    """The write of a person's click or open as the recipient's last touch (none for a
    machine's open or a bot's click)."""
    if event == "click" and kind == "human":
        return [("SET", keys.last_click(recipient_id), touch.stored(), "EX", click_ttl)]
    if event == "open" and kind in VIEW_KINDS:
        return [("SET", keys.last_view(recipient_id), touch.stored(), "EX", view_ttl)]
    return []


class ViewsWritten:
    """The people's opens this process wrote as last touches lately, so that re-opens are not
    written again (``VIEW_REFRESH_SECONDS``). At most ``size`` are remembered, forgotten all at
    once past that, and when any recipient is erased. Safe across threads: a race writes a
    touch twice, never loses one."""

    def __init__(self, size: int = 50_000, refresh: float = VIEW_REFRESH_SECONDS) -> None:
        self.size = size
        self.refresh = refresh
        self._written: dict[tuple[str | None, ...], float] = {}

    def due(self, recipient_id: str, touch: Touch) -> bool:
        """Whether the open ``touch`` of ``recipient_id`` is to be written (and, if so, it is
        remembered as written)."""
        key = (recipient_id, touch.campaign_id, touch.block_id, touch.variant, touch.send)
        at = touch.at.timestamp()
        last = self._written.get(key)
        if last is not None and 0 <= at - last < self.refresh:
            return False
        if len(self._written) >= self.size:
            self._written.clear()
        self._written[key] = at
        return True

    def clear(self) -> None:
        """Forget every open remembered."""
        self._written.clear()
