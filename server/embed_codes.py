"""Copy-paste embed code for ESPs, in each ESP's own merge-tag dialect.

An embed is an ``<a href="CLICK"><img src="IMAGE" …></a>`` (and the same as an MJML
``<mj-image>``) whose image and click URLs carry the recipient's signed token as the ESP's merge
tag for the field that holds it (the audience export hands the token to the ESP as a custom
field; the embed calls it ``bl_token`` unless told otherwise). Both URLs carry exactly the same
merge parameters, so image and click stay paired; the image also asks for ``dpr=2`` (retina)
while ``width`` and ``height`` stay at the block's 1× size.

A **dialect** is a small data object: how to write the merge tag that prints a field's value
URL-encoded, where the ESP has a way to do that, and the ESP's own rules for the names of its
custom fields (:class:`FieldRules`: length, characters, case, reserved names). Every field an
embed names is checked against the dialect's rules, so an embed never asks for a field the ESP
cannot create (Mailchimp's tags, for one, are at most 10 characters).

Blanco's tokens need no encoding (recipient ids are ``A-Z a-z 0-9 _ - : @ .`` and the signature
is unpadded base64url, all legal in a query value), so the dialects without an encoder are still
correct; the encoder is there so that a field holding something unexpected cannot break the URL
or the HTML attribute around it.

A **target** is what the embed points at: image and click paths, size, alt text and the
ordered query parameters that come from ESP fields. A campaign block has one (``r``); a
newsletter slot adds the send id (``s`` from ``bl_send``)::

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

An image whose alt text is empty is still written (``alt=""`` marks an image as decorative),
but the embed then carries a warning: inside a link, an empty alt leaves the link without a
name for screen readers and for clients that block images.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Literal

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

# Short enough for the strictest dialect (Mailchimp: *|BL_TOKEN|*, *|BL_SEND|*), so one name
# works in every ESP.
DEFAULT_TOKEN_FIELD = "bl_token"  # noqa: S105 - the name of an ESP field, not a secret
DEFAULT_SEND_FIELD = "bl_send"
MAX_FIELD_LENGTH = 64
FIELD_NAME = re.compile(rf"^[A-Za-z][A-Za-z0-9_]{{0,{MAX_FIELD_LENGTH - 1}}}$")
FIELD_NAME_RULE = f"a letter, then up to {MAX_FIELD_LENGTH - 1} letters, digits or _"
EMPTY_ALT_WARNING = (
    'the alt text is empty, so the linked image is written with alt="": the link has no name '
    "for screen readers or when images are blocked; give alt text or set the fallback's alt"
)
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
class FieldRules:
    """What one ESP accepts as the name of a custom field, checked on the name as its merge tag
    writes it. Every name also follows Blanco's own rule (``FIELD_NAME``)."""

    max_length: int
    characters: str
    """A regular expression the whole name must match (letters of either case: see ``case``)."""
    characters_rule: str
    case: Literal["upper", "lower", "any"]
    reserved: frozenset[str]
    """Names the ESP keeps for itself (compared without regard to case)."""
    source: str
    """Where the limits come from, in one line."""

    def problem(self, name: str) -> str | None:
        """Why the ESP would refuse a field called ``name``, or None if it accepts it."""
        if len(name) > self.max_length:
            return f"at most {self.max_length} characters ({name} has {len(name)})"
        if not re.fullmatch(self.characters, name):
            return self.characters_rule
        if self.case == "upper" and name != name.upper():
            return f"upper case only ({name})"
        if self.case == "lower" and name != name.lower():
            return f"lower case only ({name})"
        if name.casefold() in {r.casefold() for r in self.reserved}:
            return f"{name} is reserved"
        return None


def _as_written(name: str) -> str:
    return name


@dataclass(frozen=True)
class Dialect:
    """One ESP's way of printing a recipient field inside a URL, and its rules for field names."""

    name: str
    title: str
    merge_tag: Callable[[str], str]
    url_encoding: str
    rules: FieldRules
    tag_name: Callable[[str], str] = _as_written
    """The field's name as the ESP knows it (Mailchimp: in capitals)."""

    def field_problem(self, field: str) -> str | None:
        """Why this ESP cannot hold a field called ``field``, or None."""
        return self.rules.problem(self.tag_name(field))


def _upper(name: str) -> str:
    return name.upper()


def _mailchimp(name: str) -> str:
    return f"*|{_upper(name)}|*"


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


_IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_IDENTIFIER_RULE = "a letter, then letters, digits or _"

# Merge tags carry no spaces: some ESP link editors percent-encode spaces typed into an href,
# which would break the tag before the ESP ever evaluates it. Each dialect's ``rules`` are that
# ESP's limits on field names; docs/embed-codes.md gives the source of each in one line. Where
# an ESP documents no length limit, Blanco's own (MAX_FIELD_LENGTH) is the one written here.
DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "mailchimp",
            "Mailchimp",
            _mailchimp,
            "none: *|FIELD|* is replaced by the stored value as it is (merge tags are capital "
            "letters, digits and _, so bl_token is *|BL_TOKEN|*); Blanco tokens are URL-safe, "
            "so none is needed",
            FieldRules(
                max_length=10,
                characters=_IDENTIFIER,
                characters_rule=f"{_IDENTIFIER_RULE} (the merge tag is written in capitals)",
                case="upper",
                reserved=frozenset({"EMAIL", "UNSUB", "FORWARD", "ARCHIVE", "REWARDS"}),
                source="Mailchimp merge tags: at most 10 characters, capitals, digits and _; "
                "EMAIL and the system tags (*|UNSUB|*, *|ARCHIVE|* …) are taken",
            ),
            tag_name=_upper,
        ),
        Dialect(
            "salesforce",
            "Salesforce Marketing Cloud (AMPscript)",
            _salesforce,
            "AMPscript URLEncode(value, 1, 1): encode all characters, and the whole value "
            "rather than only a URL's parameter part",
            FieldRules(
                max_length=MAX_FIELD_LENGTH,
                characters=_IDENTIFIER,
                characters_rule=_IDENTIFIER_RULE,
                case="any",
                reserved=frozenset({"emailaddr", "subscriberid", "jobid", "listid", "memberid"}),
                source="Marketing Cloud attribute and sendable data extension field names are "
                "not case-sensitive; system personalization strings (emailaddr, jobid …) are "
                "taken; no length limit found below Blanco's 64",
            ),
        ),
        Dialect(
            "braze",
            "Braze (Liquid)",
            _braze,
            "Liquid url_param_escape: escapes every character not allowed in a URL, & included",
            FieldRules(
                max_length=MAX_FIELD_LENGTH,
                characters=_IDENTIFIER,
                characters_rule=f"{_IDENTIFIER_RULE} (Braze keeps names starting with $)",
                case="any",
                reserved=frozenset(),
                source="Braze custom attribute keys: at most 255 characters, case-sensitive, "
                "not starting with $ (Blanco's 64 is the tighter limit)",
            ),
        ),
        Dialect(
            "klaviyo",
            "Klaviyo",
            _klaviyo,
            "Django's urlencode filter (Klaviyo templates support Django's built-in filters); "
            "lookup reads the custom profile property",
            FieldRules(
                max_length=MAX_FIELD_LENGTH,
                characters=_IDENTIFIER,
                characters_rule=f"{_IDENTIFIER_RULE} (Klaviyo keeps names starting with $)",
                case="any",
                reserved=frozenset(),
                source="Klaviyo custom profile properties: case-sensitive, $-prefixed names "
                "are Klaviyo's own; no length limit found below Blanco's 64",
            ),
        ),
        Dialect(
            "hubspot",
            "HubSpot (HubL)",
            _hubspot,
            "none: HubSpot applies no HubL filters to contact tokens in emails; Blanco tokens "
            "are URL-safe, so none is needed",
            FieldRules(
                max_length=MAX_FIELD_LENGTH,
                characters=_IDENTIFIER,
                characters_rule=f"{_IDENTIFIER_RULE} (a HubSpot property's internal name)",
                case="lower",
                reserved=frozenset(),
                source="HubSpot property internal names: lower-case letters, digits and _, "
                "starting with a letter, at most 100 characters (Blanco's 64 is tighter)",
            ),
        ),
        Dialect(
            "generic",
            "Generic Liquid / Jinja",
            _generic,
            "none: Liquid (url_encode) and Jinja (urlencode) name their filters differently; "
            "Blanco tokens are URL-safe, so none is needed",
            FieldRules(
                max_length=MAX_FIELD_LENGTH,
                characters=_IDENTIFIER,
                characters_rule=f"{_IDENTIFIER_RULE} (a Liquid and Jinja variable name)",
                case="any",
                reserved=frozenset(
                    {"true", "false", "nil", "null", "none", "empty", "blank"}
                    | {"and", "or", "not", "in", "is", "if"}
                ),
                source="Liquid and Jinja variable names: identifiers, not a literal (true, "
                "nil, none, empty, blank …) or an operator (and, or, not, in, is)",
            ),
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
    warnings: tuple[str, ...] = ()

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
            "warnings": list(self.warnings),
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
    warnings: tuple[str, ...] = ()


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
        warnings=tuple(
            f"{target.image_path}: {warning}"
            for target, part in zip(targets, parts, strict=True)
            for warning in part.warnings
        ),
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


# The request parameter that names the field behind each URL parameter, for error pointers.
FIELD_POINTERS = {TOKEN_PARAM: "token_field", SEND_PARAM: "send_field", KEY_PARAM: "key_field"}


def check_field_for(chosen: Dialect, param: MergeParam) -> None:
    """InvalidInput pointing at the field's request parameter if the ESP cannot hold it."""
    problem = chosen.field_problem(param.field)
    if problem is not None:
        pointer = FIELD_POINTERS.get(param.param, "token_field")
        raise InvalidInput(
            f"invalid {pointer} for {chosen.title}",
            [FieldError((pointer,), f"{chosen.title} field names: {problem}")],
        )


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
    """``public_url`` + ``path`` with ``params`` as the dialect's merge tags (each field checked
    against the ESP's rules for field names), then the literal ``extra`` parameters."""
    parts: list[tuple[str, bool]] = [(f"{public_url}{path}", False)]
    separator = "?"
    for param in params:
        check_field_for(chosen, param)
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
        warnings=() if target.alt.strip() else (EMPTY_ALT_WARNING,),
    )


def allowed_key_field(campaign: Campaign, key_field: str | None) -> str | None:
    """``key_field`` if the campaign accepts unsigned subscriber keys; InvalidInput if not."""
    if key_field and not campaign.subscriber_keys:
        raise InvalidInput(
            "this campaign accepts only signed tokens",
            [FieldError(("key_field",), "set the campaign's subscriber_keys to use one")],
        )
    return key_field or None
