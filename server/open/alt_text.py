"""Alt text at open time: what a block's image says, in words, for the places that write HTML
around it (the web view, live HTML).

What a decision shows is described by its own ``alt`` when it has one, else by its headline as
the image draws it for this recipient: a banner's text lines (a card's title) filled from the
same fields as the image, with the same defaults, length cap and typography, joined into
sentences ("Anna, your city trip awaits. Weekend breaks from € 149"). A variant whose headline
cannot be filled shows the fallback's image, so it gets the fallback's alt; so does a variant
with no text to tell (a countdown). The fallback is drawn with no personal fields, and so is its
alt. Nothing is cached: the alt comes from the same open's fields and decision as the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.campaigns.live_data import LiveFields
from models.campaigns.specs import Block, FallbackContent
from renderers.banner import BannerParams, line_texts
from renderers.base import RenderRequest
from renderers.card import CardParams, resolve_content
from renderers.templating import LIVE_FIELD

MAX_ALT_LENGTH = 300
"""The longest alt text: as long as an admin may write one (``Variant.alt``)."""
_ENDS_SENTENCE = ".!?…:;,"


def sentences(texts: Sequence[str]) -> str:
    """The non-empty ``texts`` as one text: a full stop after a text that ends without
    punctuation, capped at ``MAX_ALT_LENGTH``."""
    parts = [text.strip() for text in texts if text.strip()]
    joined = ""
    for part in parts:
        if joined:
            joined += " " if joined.endswith(tuple(_ENDS_SENTENCE)) else ". "
        joined += part
    return joined[:MAX_ALT_LENGTH]


def headline(params: object, fields: Mapping[str, Any], max_length: int) -> str:
    """The text an image of ``params`` draws over ``fields``: a banner's lines, a card's title;
    empty for content without such text. Raises what the renderer raises (a line that needs a
    field, a template that fails)."""
    request = RenderRequest(width=1, height=1, fields=fields, max_text_length=max_length)
    if isinstance(params, BannerParams):
        return sentences(line_texts(params, request))
    if isinstance(params, CardParams):
        return sentences([resolve_content(params, request).title])
    return ""


def fallback_alt(fallback: FallbackContent, max_length: int) -> str:
    """The fallback's ``alt``, else its headline drawn with nothing personal and no live
    values (as its image is)."""
    if fallback.alt:
        return fallback.alt
    try:
        return headline(fallback.content, {LIVE_FIELD: LiveFields()}, max_length)
    except Exception:  # its image is then the last resort: nothing to describe
        return ""


def shown_alt(
    block: Block, variant_id: str | None, fields: Mapping[str, Any], max_length: int
) -> str:
    """The alt text of what a decision for ``variant_id`` shows, ``fields`` being what its
    image is drawn over (the recipient's profile and ``live``): the variant's ``alt``, else its
    headline, else (the fallback shows, or the variant has no text) the fallback's."""
    variant = block.variant(variant_id) if variant_id else None
    if variant is not None:
        if variant.alt:
            return variant.alt
        try:
            said = headline(variant.content, fields, max_length)
        except Exception:  # the image shows the fallback instead
            said = ""
        if said:
            return said
    return fallback_alt(block.fallback, max_length)
