"""The URLs Blanco hands out: image and click URLs of a block for a recipient token."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

TOKEN_PARAM = "r"  # noqa: S105 - a query parameter name, not a secret
SEND_PARAM = "s"
KEY_PARAM = "k"
"""An ESP's unsigned subscriber key, for campaigns that allow it (restricted content)."""


def image_path(campaign_id: str, block_id: str) -> str:
    """Path of a block's image route."""
    return f"/i/{campaign_id}/{block_id}.png"


def click_path(campaign_id: str, block_id: str) -> str:
    """Path of a block's click route."""
    return f"/c/{campaign_id}/{block_id}"


def image_url(public_url: str, campaign_id: str, block_id: str, token: str) -> str:
    """Absolute image URL for a recipient token (or an ESP merge tag standing for one)."""
    return f"{public_url}{image_path(campaign_id, block_id)}?{TOKEN_PARAM}={quote(token, safe='')}"


def click_url(public_url: str, campaign_id: str, block_id: str, token: str) -> str:
    """Absolute click URL for a recipient token; pairs with ``image_url``."""
    return f"{public_url}{click_path(campaign_id, block_id)}?{TOKEN_PARAM}={quote(token, safe='')}"


def slot_image_path(campaign_id: str, slot: int) -> str:
    """Path of a newsletter slot's image route."""
    return f"/s/{campaign_id}/{slot}.png"


def slot_click_path(campaign_id: str, slot: int) -> str:
    """Path of a newsletter slot's click route."""
    return f"/s/{campaign_id}/{slot}"


def with_param(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value``: any of that name is taken out and
    the new one appended; the rest of the query stays byte for byte (its order, encoding and
    bare flags), as does the fragment. URLs other than http(s) are left alone."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url
    kept = [
        field
        for field in parts.query.split("&")
        if field and unquote_plus(field.partition("=")[0]) != name
    ]
    kept.append(f"{quote(name, safe='')}={quote(value, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept)))


def token_host(url: str, hosts: Sequence[str]) -> bool:
    """Whether a redirect to ``url`` may carry the click's attribution token: an http(s) URL
    whose host is one of ``hosts`` or below one (``shop.example`` allows
    ``www.shop.example``); every http(s) URL when ``hosts`` is empty."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return False
    if not hosts:
        return True
    host = (parts.hostname or "").rstrip(".")
    return any(host == allowed or host.endswith(f".{allowed}") for allowed in hosts)
