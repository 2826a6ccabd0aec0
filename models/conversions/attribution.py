"""Attribution rules: which email a conversion is credited to.

``attribute`` is a pure function of the conversion's time and the recipient's touches:

1. **Last human click.** The latest person's click (``models.conversions.touches``; bots and link
   scanners never count) that lies within the click window before the conversion is credited:
   the click the order's attribution token names, or the recipient's last click, whichever is
   later. Basis ``click``.
2. **View-through.** Without such a click, the recipient's last person's open within the shorter
   view window. Basis ``view``, reported apart from clicks. Machine opens (Apple's prefetch)
   never count.
3. Otherwise the conversion is kept, but credited to no email (basis ``none``).

A touch may come up to ``CLOCK_SKEW`` after the conversion's time (the shop's clock and Blanco's
disagree a little). A touch more than ``late_days`` after its send's time is *late*: its
conversions are reported in their own row. An order's attribution is fixed when it first
arrives; sending the order again changes its value, never its credit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from models.conversions.touches import Touch

CLOCK_SKEW = dt.timedelta(minutes=5)
Basis = Literal["click", "view", "none"]
SendTime = Callable[[str, str], dt.datetime | None]
"""The send time of (campaign, send), if known."""


@dataclass(frozen=True)
class Windows:
    """The attribution windows, in days."""

    click_days: float = 7.0
    view_days: float = 1.0
    late_days: float = 7.0

    @property
    def click(self) -> dt.timedelta:
        """The click window."""
        return dt.timedelta(days=self.click_days)

    @property
    def view(self) -> dt.timedelta:
        """The view-through window."""
        return dt.timedelta(days=self.view_days)


@dataclass(frozen=True)
class Attribution:
    """The credit of one conversion."""

    basis: Basis
    touch: Touch | None = None
    late: bool = False
    """The touch came more than the late threshold after its send."""

    @property
    def counted_as(self) -> str:
        """The basis a report counts it under (``click``, ``view``, ``late_click``,
        ``late_view``)."""
        return f"late_{self.basis}" if self.late else self.basis

    def stored(self) -> str:
        """The stored form (kept with the order, so that its credit never moves)."""
        touch = self.touch.stored() if self.touch is not None else None
        return json.dumps({"basis": self.basis, "touch": touch, "late": self.late})

    @classmethod
    def from_stored(cls, document: str | bytes | None) -> Attribution | None:
        """An attribution read back (None when absent or unreadable)."""
        if document is None:
            return None
        try:
            found = json.loads(document)
            basis = found["basis"]
        except (ValueError, TypeError, KeyError):
            return None
        if basis not in ("click", "view", "none"):
            return None
        return cls(basis, Touch.from_stored(found.get("touch")), bool(found.get("late")))

    def as_dict(self) -> dict[str, Any]:
        """As the API shows it."""
        return {
            "basis": self.basis,
            "late": self.late,
            "touch": self.touch.as_dict() if self.touch is not None else None,
        }


NONE = Attribution("none")


def _within(touch: Touch, at: dt.datetime, window: dt.timedelta) -> bool:
    return at - window <= touch.at <= at + CLOCK_SKEW


def attribute(
    at: dt.datetime,
    clicks: Iterable[Touch | None],
    view: Touch | None,
    windows: Windows,
    send_time: SendTime,
) -> Attribution:
    """The credit of a conversion at ``at`` (see the module docstring): ``clicks`` are the
    recipient's last click and the click the order's token names, ``view`` their last open."""
    qualifying = [c for c in clicks if c is not None and _within(c, at, windows.click)]
    if qualifying:
        touch = max(qualifying, key=lambda c: c.at)
        return Attribution("click", touch, _late(touch, windows, send_time))
    if view is not None and _within(view, at, windows.view):
        return Attribution("view", view, _late(view, windows, send_time))
    return NONE


def _late(touch: Touch, windows: Windows, send_time: SendTime) -> bool:
    if touch.send is None:
        return False
    sent = send_time(touch.campaign_id, touch.send)
    return sent is not None and touch.at - sent > dt.timedelta(days=windows.late_days)
