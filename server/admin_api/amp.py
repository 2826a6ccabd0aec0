"""Admin API: the blank daily newsletter as an AMP email, in an ESP's merge-tag dialect.

The answer holds both parts the ESP sends: ``amp`` (``text/x-amp-html``: an ``amp-list`` that
fetches the recipient's items from ``/amp/<campaign>/items.json?r=<token>&s=<send>`` at open)
and ``html`` (``text/html``: every slot's ``<a><img></a>`` embed code, what clients without AMP
show). Both carry the recipient's token and the send id as the ESP's merge tags
(``server.embed_codes`` dialects), so the AMP items, the AMP part's image slots (shown for an
empty list and when the fetch fails) and the HTML part all read the same ranking and their
clicks stay paired.

Several ESPs evaluate ``{{ … }}`` themselves (Liquid, HubL, Salesforce's GTL) and would eat the
``amp-mustache`` template before the email leaves; the document is guarded per dialect: a raw
block around the mustache template for the Liquid/Jinja family, Salesforce's documented GTL
delimiter switch (``<!-- {{={< >}=}} -->``) before the doctype. Mailchimp needs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pydantic import BaseModel, Field

from models.newsletter.newsletters import Newsletter
from server.admin_api.newsletters import NEWSLETTER, TAG
from server.admin_api.registry import api
from server.embed_codes import (
    DEFAULT_SEND_FIELD,
    DEFAULT_TOKEN_FIELD,
    DIALECTS,
    RETINA_DPR,
    dialect,
    embed_code,
    literal,
    merge_params,
    merge_url,
    slot_target,
)
from server.open.amp import items_path
from server.services import services
from server.urls import slot_click_path, slot_image_path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "amp"
SLOT_GAP = 16
"""Vertical space between slots in the AMP part (``.slot`` margin in the template)."""


@dataclass(frozen=True)
class MustacheGuard:
    """How one ESP is kept from evaluating the ``amp-mustache`` template itself."""

    document_prefix: str
    raw_open: str
    raw_close: str


_RAW = MustacheGuard("", "{% raw %}", "{% endraw %}")
GUARDS: dict[str, MustacheGuard] = {
    "mailchimp": MustacheGuard("", "", ""),
    # Marketing Cloud's Guide Template Language also uses {{ }}; Salesforce documents switching
    # its delimiters with this comment before the doctype (help article mc_ceb_amp_appendix_gtl).
    "salesforce": MustacheGuard("<!-- {{={< >}=}} -->\n", "", ""),
    "braze": _RAW,  # Liquid
    "klaviyo": _RAW,  # Django-style; assumed to honour {% raw %} like Liquid (not verified)
    "hubspot": _RAW,  # HubL (Jinja)
    "generic": _RAW,  # Liquid and Jinja
}


class AmpNewsletterAnswer(BaseModel):
    """The newsletter as an AMP email for one ESP: both MIME parts, with merge tags."""

    esp: str
    amp: str = Field(description="The text/x-amp-html part.")
    html: str = Field(description="The text/html part (every slot's <a><img></a>).")
    items_url: str = Field(description="The URL amp-list fetches, with the merge tags.")
    fields: dict[str, str] = Field(description="The ESP field behind each URL parameter.")
    parts: list[str] = Field(
        description="The multipart/alternative order: text/x-amp-html before text/html (some "
        "clients render only the last part); clients without AMP show text/html."
    )


QUERY_AMP = {
    "esp": f"Merge-tag dialect: {', '.join(DIALECTS)} (default generic).",
    "token_field": f"The ESP field holding the recipient's token (default {DEFAULT_TOKEN_FIELD}).",
    "send_field": f"The ESP field holding the send id (default {DEFAULT_SEND_FIELD}).",
}


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def amp_newsletter(
    newsletter: Newsletter,
    esp: str,
    public_url: str,
    token_field: str = DEFAULT_TOKEN_FIELD,
    send_field: str = DEFAULT_SEND_FIELD,
) -> AmpNewsletterAnswer:
    """Both parts of the AMP email of ``newsletter`` in the dialect ``esp``."""
    chosen = dialect(esp)
    params = merge_params(token_field, send_field)
    campaign_id = newsletter.campaign_id
    codes = [
        embed_code(
            slot_target(newsletter, number, token_field, send_field), chosen.name, public_url
        )
        for number in range(1, len(newsletter.slots) + 1)
    ]
    items = merge_url(public_url, items_path(campaign_id), chosen, params)
    guard = GUARDS.get(chosen.name, _RAW)
    width = max(slot.width for slot in newsletter.slots)
    environment = _templates()
    image_slots = environment.get_template("image_slots.html").render(
        slots=[
            {
                "image": merge_url(
                    public_url,
                    slot_image_path(campaign_id, number),
                    chosen,
                    params,
                    (("dpr", RETINA_DPR),),
                ).attribute,
                "click": merge_url(
                    public_url, slot_click_path(campaign_id, number), chosen, params
                ).attribute,
                "width": code.width,
                "height": code.height,
                "alt": Markup(literal(code.alt)),  # noqa: S704 - escaped by literal()
            }
            for number, code in enumerate(codes, start=1)
        ],
    )
    amp = environment.get_template("newsletter.html").render(
        document_prefix=Markup(guard.document_prefix),  # noqa: S704 - a constant
        raw_open=Markup(guard.raw_open),  # noqa: S704 - a constant
        raw_close=Markup(guard.raw_close),  # noqa: S704 - a constant
        items_src=items.attribute,
        list_height=sum(slot.height + SLOT_GAP for slot in newsletter.slots),
        width=width,
        image_slots=Markup(image_slots),  # noqa: S704 - rendered with autoescaping
    )
    html = environment.get_template("newsletter_fallback.html").render(
        snippets=[Markup(code.html) for code in codes],  # noqa: S704 - escaped by embed_code
        width=width,
    )
    return AmpNewsletterAnswer(
        esp=chosen.name,
        amp=amp,
        html=html,
        items_url=items.text,
        fields={p.param: p.field for p in params},
        parts=["text/plain", "text/x-amp-html", "text/html"],
    )


@api.operation(
    "GET",
    f"{NEWSLETTER}/amp",
    summary="The newsletter as an AMP email (text/x-amp-html and text/html parts) for an ESP",
    tag=TAG,
    response=AmpNewsletterAnswer,
    query=QUERY_AMP,
    errors=(404, 422),
)
def newsletter_amp(campaign_id: str) -> ResponseReturnValue:
    """Both parts of the AMP newsletter with the ESP's merge tags for the token and send id."""
    chosen = dialect(request.args.get("esp", "generic"))
    svc = services()
    newsletter = svc.newsletters.require(campaign_id)
    answer = amp_newsletter(
        newsletter,
        chosen.name,
        svc.settings.public_url,
        request.args.get("token_field", DEFAULT_TOKEN_FIELD),
        request.args.get("send_field", DEFAULT_SEND_FIELD),
    )
    return jsonify(answer.model_dump(mode="json"))
