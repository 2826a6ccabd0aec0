"""Copy-paste embed code for ESPs, in each ESP's own merge-tag dialect.

An embed is an ``<a href="CLICK"><img src="IMAGE" …></a>`` (and the same as an MJML
``<mj-image>``) whose image and click URLs carry the recipient's signed token as the ESP's merge
tag for the field that holds it (the audience export hands the token to the ESP as a custom
field, ``blanco_token`` by default). Both URLs carry exactly the same merge parameters, so image
and click stay paired; the image also asks for ``dpr=2`` (retina) while ``width`` and ``height``
stay at the block's 1× size.

A **dialect** is a small data object: how to write the merge tag that prints a field's value
URL-encoded, where the ESP has a way to do that. Blanco's tokens need no encoding (recipient ids
are ``A-Z a-z 0-9 _ - : @ .`` and the signature is unpadded base64url, all legal in a query
value), so the dialects without an encoder are still correct; the encoder is there so that a
field holding something unexpected cannot break the URL or the HTML attribute around it.

A **target** is what the embed points at: image and click paths, size, alt text and the
ordered query parameters that come from ESP fields. A campaign block has one (``r``); a
newsletter slot will add the send id (``s`` from ``blanco_send_id``)::

    EmbedTarget(
        image_path=f"/s/{campaign_id}/{slot}.png",
        click_path=f"/s/{campaign_id}/{slot}",
        width=..., height=..., alt=...,
        params=(MergeParam(TOKEN_PARAM, token_field), MergeParam("s", send_field)),
    )

HTML escaping: the literal parts of the snippet (URL text, alt) are HTML-escaped, and the
characters that start a merge tag in some dialect (``{ } % | $ *``) are written as character
references, so alt text such as ``50%% off`` or ``{{ x }}`` shows as typed instead of being
evaluated by the ESP. Merge tags are inserted verbatim (the ESP must see them as written) and
are checked to hold nothing that could end the attribute (``" < > &``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from models.campaigns.specs import Block, Campaign
from models.errors import FieldError, InvalidInput
from models.newsletter.newsletters import Newsletter
from server.urls import (
    KEY_PARAM,
    SEND_PARAM,
    TOKEN_PARAM,
    click_path,
    image_path,
    slot_click_path,
    slot_image_path,
)

DEFAULT_TOKEN_FIELD = "blanco_token"  # noqa: S105 - the name of an ESP field, not a secret
DEFAULT_SEND_FIELD = "blanco_send_id"
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
FIELD_NAME_RULE = "a letter, then up to 63 letters, digits or _"
MAX_ALT_LENGTH = 300
RETINA_DPR = "2"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "embed"

# Characters that end an attribute value or start a character reference: never in a merge tag.
_ATTRIBUTE_BREAKERS = frozenset('"<>&')
# Characters that start a merge tag in some dialect, written as character references in
# literal text (``*|`` Mailchimp, ``%%`` AMPscript, ``{{`` ``{%`` Liquid/HubL/Django, ``${``).
_TEMPLATE_CHARACTERS = str.maketrans(
    {c: f"&#{ord(c)};" for c in "{}%|$*"},
)


@dataclass(frozen=True)
class Dialect:
    """One ESP's way of printing a recipient field inside a URL."""

    name: str
    title: str
    merge_tag: Callable[[str], str]
    url_encoding: str


def _mailchimp(name: str) -> str:
    return f"*|{name.upper()}|*"


def _salesforce(name: str) -> str:
    return f"%%=URLEncode(AttributeValue('{name}'),1,1)=%%"


def _braze(name: str) -> str:
    return f"{{{{custom_attribute.${{{name}}}|url_param_escape}}}}"


def _klaviyo(name: str) -> str:
    return f"{{{{person|lookup:'{name}'|urlencode}}}}"


def _hubspot(name: str) -> str:
    return f"{{{{contact.{name}}}}}"


def _generic(name: str) -> str:
    return f"{{{{{name}}}}}"


# Merge tags carry no spaces: some ESP link editors percent-encode spaces typed into an href,
# which would break the tag before the ESP ever evaluates it.
DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "mailchimp",
            "Mailchimp",
            _mailchimp,
            "none: *|FIELD|* is replaced by the stored value as it is (merge tags are capital "
            "letters, digits and _, so blanco_token is *|BLANCO_TOKEN|*); Blanco tokens are "
            "URL-safe, so none is needed",
        ),
        Dialect(
            "salesforce",
            "Salesforce Marketing Cloud (AMPscript)",
            _salesforce,
            "AMPscript URLEncode(value, 1, 1): encode all characters, and the whole value "
            "rather than only a URL's parameter part",
        ),
        Dialect(
            "braze",
            "Braze (Liquid)",
            _braze,
            "Liquid url_param_escape: escapes every character not allowed in a URL, & included",
        ),
        Dialect(
            "klaviyo",
            "Klaviyo",
            _klaviyo,
            "Django's urlencode filter (Klaviyo templates support Django's built-in filters); "
            "lookup reads the custom profile property",
        ),
        Dialect(
            "hubspot",
            "HubSpot (HubL)",
            _hubspot,
            "none: HubSpot applies no HubL filters to contact tokens in emails; Blanco tokens "
            "are URL-safe, so none is needed",
        ),
        Dialect(
            "generic",
            "Generic Liquid / Jinja",
            _generic,
            "none: Liquid (url_encode) and Jinja (urlencode) name their filters differently; "
            "Blanco tokens are URL-safe, so none is needed",
        ),
    )
}


@dataclass(frozen=True)
class MergeParam:
    """A URL query parameter whose value the ESP fills from one of its fields."""

    param: str
    field: str


@dataclass(frozen=True)
class EmbedTarget:
    """What an embed points at. ``params`` go on both URLs, in this order, so they pair up."""

    image_path: str
    click_path: str
    width: int
    height: int
    alt: str
    params: tuple[MergeParam, ...]


@dataclass(frozen=True)
class EmbedCode:
    """The embed for one target in one dialect. URLs are plain text; ``html``/``mjml`` escaped."""

    esp: str
    html: str
    mjml: str
    image_url: str
    click_url: str
    width: int
    height: int
    alt: str
    fields: dict[str, str]
    url_encoding: str

    def as_dict(self) -> dict[str, object]:
        """The embed as the admin API and ``blanco embed --json`` answer it."""
        return {
            "esp": self.esp,
            "html": self.html,
            "mjml": self.mjml,
            "image_url": self.image_url,
            "click_url": self.click_url,
            "width": self.width,
            "height": self.height,
            "alt": self.alt,
            "fields": dict(self.fields),
            "url_encoding": self.url_encoding,
        }


def dialect(name: str) -> Dialect:
    """The dialect called ``name``; InvalidInput pointing at ``esp`` if there is none."""
    found = DIALECTS.get(name)
    if found is None:
        choices = ", ".join(DIALECTS)
        raise InvalidInput(
            f"unknown ESP {name!r}", [FieldError(("esp",), f"must be one of: {choices}")]
        )
    return found


def checked_field(name: str, pointer: str = "token_field") -> str:
    """An ESP field name that every dialect can write; InvalidInput pointing at it if not."""
    if not FIELD_NAME.match(name):
        raise InvalidInput(f"invalid {pointer}", [FieldError((pointer,), FIELD_NAME_RULE)])
    return name


def default_alt(block: Block) -> str:
    """Alt text when none is given: the fallback's alt, else the block's name, else empty."""
    return block.fallback.alt or block.name


def block_target(
    block: Block,
    token_field: str = DEFAULT_TOKEN_FIELD,
    alt: str | None = None,
    key_field: str | None = None,
) -> EmbedTarget:
    """The target of a campaign block: ``/i/<c>/<b>.png`` and ``/c/<c>/<b>`` with ``r`` (or
    ``k``)."""
    chosen_alt = default_alt(block) if alt is None else alt
    if len(chosen_alt) > MAX_ALT_LENGTH:
        raise InvalidInput(
            "alt text is too long",
            [FieldError(("alt",), f"at most {MAX_ALT_LENGTH} characters")],
        )
    return EmbedTarget(
        image_path=image_path(block.campaign_id, block.id),
        click_path=click_path(block.campaign_id, block.id),
        width=block.width,
        height=block.height,
        alt=chosen_alt,
        params=merge_params(token_field, key_field=key_field),
    )


def merge_params(
    token_field: str = DEFAULT_TOKEN_FIELD,
    send_field: str | None = None,
    key_field: str | None = None,
) -> tuple[MergeParam, ...]:
    """``r`` from the token field (or ``k`` from the ESP's subscriber key field, for campaigns
    that accept unsigned keys), then (for newsletter sends) ``s`` from the send field."""
    params = (
        (MergeParam(KEY_PARAM, checked_field(key_field, "key_field")),)
        if key_field
        else (MergeParam(TOKEN_PARAM, checked_field(token_field)),)
    )
    if send_field is None:
        return params
    return (*params, MergeParam(SEND_PARAM, checked_field(send_field, "send_field")))


def slot_target(
    newsletter: Newsletter,
    number: int,
    token_field: str = DEFAULT_TOKEN_FIELD,
    send_field: str = DEFAULT_SEND_FIELD,
    key_field: str | None = None,
) -> EmbedTarget:
    """The target of newsletter slot ``number``: ``/s/<c>/<n>.png`` and ``/s/<c>/<n>`` with
    ``r`` and ``s``, so the slots of one email share the recipient's ranking for the send."""
    slot = newsletter.slots[number - 1]
    return EmbedTarget(
        image_path=slot_image_path(newsletter.campaign_id, number),
        click_path=slot_click_path(newsletter.campaign_id, number),
        width=slot.width,
        height=slot.height,
        alt=slot.alt or slot.fallback.alt,
        params=merge_params(token_field, send_field, key_field),
    )


@dataclass(frozen=True)
class NewsletterEmbed:
    """A whole newsletter's body for one ESP: its blocks, then its slots, in order, with a
    "view in browser" link; every URL carries the token and send merge tags."""

    esp: str
    html: str
    mjml: str
    parts: list[EmbedCode]
    web_view_url: str
    fields: dict[str, str]


def newsletter_embed(
    newsletter: Newsletter,
    blocks: list[Block],
    esp: str,
    public_url: str,
    token_field: str = DEFAULT_TOKEN_FIELD,
    send_field: str = DEFAULT_SEND_FIELD,
    key_field: str | None = None,
) -> NewsletterEmbed:
    """The embed of the newsletter's ``blocks`` (in its order) and slots in dialect ``esp``."""
    chosen = dialect(esp)
    params = merge_params(token_field, send_field, key_field)
    targets = [replace(block_target(block, token_field), params=params) for block in blocks]
    targets += [
        slot_target(newsletter, number, token_field, send_field, key_field)
        for number in range(1, len(newsletter.slots) + 1)
    ]
    parts = [embed_code(target, chosen.name, public_url) for target in targets]
    view = merge_url(public_url, f"/v/{newsletter.campaign_id}", chosen, params)
    width = max(part.width for part in parts)
    environment = _templates()
    values = {
        "parts": [Markup(part.html) for part in parts],  # noqa: S704 - escaped by embed_code
        "mjml_parts": [Markup(part.mjml) for part in parts],  # noqa: S704 - escaped likewise
        "web_view": view.attribute,
        "width": width,
        "title": Markup(literal(newsletter.name or newsletter.campaign_id)),  # noqa: S704
    }
    return NewsletterEmbed(
        esp=chosen.name,
        html=environment.get_template("newsletter.html").render(values),
        mjml=environment.get_template("newsletter.mjml").render(values),
        parts=parts,
        web_view_url=view.text,
        fields={p.param: p.field for p in params},
    )


@dataclass(frozen=True)
class _Url:
    """A URL as literal text and merge tags, so each part gets the escaping it needs."""

    parts: tuple[tuple[str, bool], ...]  # (text, is_merge_tag)

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def attribute(self) -> Markup:
        # Literal parts are escaped by literal(); merge tags were checked by _merge_tag.
        joined = "".join(text if is_tag else literal(text) for text, is_tag in self.parts)
        return Markup(joined)  # noqa: S704


def literal(text: str) -> str:
    """``text`` escaped for an HTML attribute, with merge-tag characters as references."""
    return escape(text, quote=True).translate(_TEMPLATE_CHARACTERS)


def _merge_tag(chosen: Dialect, name: str) -> str:
    tag = chosen.merge_tag(name)
    if _ATTRIBUTE_BREAKERS.intersection(tag):
        raise ValueError(f"the {chosen.name} merge tag {tag!r} would break an HTML attribute")
    return tag


def merge_url(
    public_url: str,
    path: str,
    chosen: Dialect,
    params: tuple[MergeParam, ...],
    extra: tuple[tuple[str, str], ...] = (),
) -> _Url:
    parts: list[tuple[str, bool]] = [(f"{public_url}{path}", False)]
    separator = "?"
    for param in params:
        parts += [(f"{separator}{param.param}=", False), (_merge_tag(chosen, param.field), True)]
        separator = "&"
    for name, value in extra:
        parts.append((f"{separator}{name}={value}", False))
        separator = "&"
    return _Url(tuple(parts))


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def embed_code(target: EmbedTarget, esp: str, public_url: str) -> EmbedCode:
    """The embed of ``target`` in the dialect ``esp`` for a server reached at ``public_url``."""
    chosen = dialect(esp)
    image = merge_url(public_url, target.image_path, chosen, target.params, (("dpr", RETINA_DPR),))
    click = merge_url(public_url, target.click_path, chosen, target.params)
    values = {
        "image": image.attribute,
        "click": click.attribute,
        "width": target.width,
        "height": target.height,
        "alt": Markup(literal(target.alt)),  # noqa: S704 - escaped by literal()
    }
    environment = _templates()
    return EmbedCode(
        esp=chosen.name,
        html=environment.get_template("image_link.html").render(values),
        mjml=environment.get_template("image_link.mjml").render(values),
        image_url=image.text,
        click_url=click.text,
        width=target.width,
        height=target.height,
        alt=target.alt,
        fields={p.param: p.field for p in target.params},
        url_encoding=chosen.url_encoding,
    )


def allowed_key_field(campaign: Campaign, key_field: str | None) -> str | None:
    """``key_field`` if the campaign accepts unsigned subscriber keys; InvalidInput if not."""
    if key_field and not campaign.subscriber_keys:
        raise InvalidInput(
            "this campaign accepts only signed tokens",
            [FieldError(("key_field",), "set the campaign's subscriber_keys to use one")],
        )
    return key_field or None
