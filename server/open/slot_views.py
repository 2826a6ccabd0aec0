"""A newsletter slot's content outside its image: the item as data (AMP, the channel endpoint)
and as live HTML (the web view), with its picture, prices and click URL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from models.assets.metadata import Asset, valid_asset_id
from models.config_cache import ConfigCache
from renderers.card import CardParams, format_price, safe_fill
from server.open.assets import asset_path
from server.open.slots import SlotContent
from server.urls import KEY_PARAM, SEND_PARAM, TOKEN_PARAM

DEFAULT_CURRENCY: str = CardParams.model_fields["currency"].default
DEFAULT_LOCALE: str = CardParams.model_fields["locale"].default


def picture(content: SlotContent) -> str | None:
    """The asset id of the picture the slot's item is shown with, if any."""
    if content.item is None:
        return None
    layout_asset = getattr(content.slot.layout, "image_asset", None)
    return content.item.image_asset or (layout_asset if isinstance(layout_asset, str) else None)


def pictures(config: ConfigCache, contents: list[SlotContent]) -> dict[str, Asset]:
    """The metadata of the slots' pictures, by asset id (from the configuration cache: asset
    metadata never changes once stored)."""
    wanted = sorted({p for c in contents if (p := picture(c)) and valid_asset_id(p)})
    return config.assets(wanted) if wanted else {}


def click_query(token: str | None, send_id: str | None, subscriber_key: str | None = None) -> str:
    """``?r=…&s=…`` for slot URLs: pass the token only when it is genuine (or, instead, an
    accepted subscriber key as ``k=``)."""
    params = []
    if token is not None:
        params.append(f"{TOKEN_PARAM}={quote(token, safe='')}")
    elif subscriber_key is not None:
        params.append(f"{KEY_PARAM}={quote(subscriber_key, safe='')}")
    if send_id is not None:
        params.append(f"{SEND_PARAM}={send_id}")
    return "?" + "&".join(params) if params else ""


def price_text(amount: float | None, content: SlotContent) -> str:
    """``amount`` in the card layout's currency and locale (the card defaults otherwise)."""
    if amount is None:
        return ""
    layout = content.slot.layout
    currency, locale = (
        (layout.currency, layout.locale)
        if isinstance(layout, CardParams)
        else (DEFAULT_CURRENCY, DEFAULT_LOCALE)
    )
    return format_price(Decimal(repr(float(amount))), currency, locale)


def slot_alt(content: SlotContent) -> str:
    """What the slot shows, in words: its item's title and price (``Trip lisbon, € 289,00``,
    the price as ``price_text`` writes it), else the slot's alt; the fallback's alt (else the
    slot's) when it shows its fallback."""
    item = content.item
    slot = content.slot
    if item is None:
        return slot.fallback.alt or slot.alt
    said = ", ".join(part for part in (item.title, price_text(item.price, content)) if part)
    return said or slot.alt


def cta_text(content: SlotContent, max_length: int) -> str:
    """The item's call to action, else the card's button text filled for the slot."""
    if content.item is not None and content.item.cta:
        return content.item.cta
    layout = content.slot.layout
    if isinstance(layout, CardParams) and layout.cta is not None:
        return safe_fill(layout.cta.text, content.fields, layout.defaults, max_length)
    return ""


def slot_item(
    number: int,
    content: SlotContent,
    assets: dict[str, Asset],
    url: str,
    public_url: str,
    max_length: int,
) -> dict[str, Any]:
    """What slot ``number`` shows, as data: the item, or the slot's fallback (its alt text as
    the title, no picture); ``url`` is the slot's click URL either way, ``alt`` its
    ``slot_alt``."""
    item = content.item
    slot = content.slot
    if item is None:
        return {
            "slot": number,
            "fallback": True,
            "item": None,
            "title": slot.fallback.alt or slot.alt,
            "alt": slot_alt(content),
            "text": "",
            "category": None,
            "price": "",
            "old_price": "",
            "badge": "",
            "cta": "",
            "image": "",
            "width": slot.width,
            "height": slot.height,
            "url": url,
        }
    shown = assets.get(picture(content) or "")
    price = price_text(item.price, content)
    return {
        "slot": number,
        "fallback": False,
        "item": item.id,
        "title": item.title,
        "alt": slot_alt(content),
        "text": item.text,
        "category": item.category,
        "price": price,
        "old_price": price_text(item.old_price, content) if price else "",
        "badge": item.badge,
        "cta": cta_text(content, max_length),
        "image": public_url + asset_path(shown.id, shown.media_type) if shown else "",
        "width": shown.width if shown else slot.width,
        "height": shown.height if shown else slot.height,
        "url": url,
    }


def slot_html(content: SlotContent, data: dict[str, Any]) -> Markup:
    """The slot's live HTML for the web view: its item template over the item's fields and
    ``data`` (a ``slot_item``; its alt as ``item_alt``). Raises on template errors (callers
    show the image instead)."""
    fields = {
        **content.fields,
        "click_url": data["url"],
        "image_url": data["image"],
        "item_price_text": data["price"],
        "item_old_price_text": data["old_price"],
        "item_cta": data["cta"],
        "item_alt": data["alt"],
    }
    return content.slot.html.render(fields)
