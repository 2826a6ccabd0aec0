"""Who fetched an image: the email client or proxy, the device class, and whether a person did.

Classification uses request headers only; nothing about the request is stored but the result.
Sources: the user agents documented by Google (GoogleImageProxy) and Yahoo (YahooMailProxy),
Apple Mail Privacy Protection's bare ``Mozilla/5.0`` prefetch, Outlook's ``Microsoft Office``
agent, and common browser agents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

OpenKind = Literal["human", "proxied_human", "machine", "unknown"]
Device = Literal["mobile", "desktop", "tablet", "unknown"]

_MOBILE = re.compile(r"iPhone|iPod|Android.+Mobile|Windows Phone|Mobile/\w+", re.IGNORECASE)
_TABLET = re.compile(r"iPad|Android(?!.+Mobile)|Tablet", re.IGNORECASE)


@dataclass(frozen=True)
class ClientInfo:
    """The outcome of classifying one request."""

    client: str
    device: Device
    open_kind: OpenKind

    @property
    def machine(self) -> bool:
        """Whether no person was looking (a prefetch)."""
        return self.open_kind == "machine"


def _device(user_agent: str) -> Device:
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if re.search(r"Windows|Macintosh|X11|Linux", user_agent):
        return "desktop"
    return "unknown"


def classify_open(user_agent: str | None) -> ClientInfo:
    """Classify an image request by its User-Agent."""
    agent = (user_agent or "").strip()
    if not agent:
        return ClientInfo("unknown", "unknown", "unknown")
    if "GoogleImageProxy" in agent:
        return ClientInfo("gmail_proxy", "unknown", "proxied_human")
    if agent.startswith("YahooMailProxy"):
        return ClientInfo("yahoo_proxy", "unknown", "proxied_human")
    if agent == "Mozilla/5.0":
        return ClientInfo("apple_mpp", "unknown", "machine")
    if "Microsoft Outlook" in agent or agent.startswith("Microsoft Office"):
        return ClientInfo("outlook_desktop", "desktop", "human")
    if "Thunderbird/" in agent:
        return ClientInfo("thunderbird", "desktop", "human")
    device = _device(agent)
    if "AppleWebKit" in agent and "Safari" not in agent and "Chrome" not in agent:
        if re.search(r"iPhone|iPad|iPod", agent):
            return ClientInfo("apple_mail_ios", device, "human")
        if "Macintosh" in agent:
            return ClientInfo("apple_mail_mac", "desktop", "human")
    if re.search(r"Chrome|Firefox|Safari|Edg/", agent):
        return ClientInfo("browser", device, "human")
    return ClientInfo("other", device, "unknown")
