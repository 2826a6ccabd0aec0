"""Admin API: copy-paste embed code of a block, or of a whole newsletter, in an ESP's
merge-tag dialect."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from server.admin_api.campaigns import BLOCK, TAG_BLOCKS
from server.admin_api.registry import api
from server.embed_codes import (
    DEFAULT_SEND_FIELD,
    DEFAULT_TOKEN_FIELD,
    DIALECTS,
    allowed_key_field,
    block_target,
    dialect,
    embed_code,
    newsletter_embed,
)
from server.services import services


class EmbedAnswer(BaseModel):
    """Embed code of a block for one ESP: the merge tags stand for the recipient's token."""

    esp: str
    html: str = Field(description="<a><img></a> with explicit 1× width, height and alt.")
    mjml: str = Field(description="The same image and link as an <mj-image>.")
    image_url: str = Field(description="Image URL with the merge tags (asks for dpr=2).")
    click_url: str = Field(description="Click URL with the same merge parameters.")
    width: int
    height: int
    alt: str
    fields: dict[str, str] = Field(description="The ESP field behind each URL parameter.")
    url_encoding: str = Field(description="How this ESP URL-encodes the merged values.")
    warnings: list[str] = Field(
        default_factory=list,
        description='Problems to fix before sending, such as an image written with alt="".',
    )


QUERY_EMBED = {
    "esp": f"Merge-tag dialect: {', '.join(DIALECTS)} (default generic).",
    "token_field": f"The ESP field holding the recipient's token (default {DEFAULT_TOKEN_FIELD}).",
    "key_field": "Instead of the token, the ESP's own subscriber key field (`k=`; only for "
    "campaigns with subscriber_keys, whose content is then restricted).",
    "alt": "Alt text (default: the fallback's alt, else the block's name).",
}


@api.operation(
    "GET",
    f"{BLOCK}/embed",
    summary="Embed code for an ESP (merge tags for the recipient token)",
    tag=TAG_BLOCKS,
    response=EmbedAnswer,
    query=QUERY_EMBED,
    errors=(404, 422),
)
def block_embed(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """The block's image and link with the ESP's merge tag for the token field."""
    chosen = dialect(request.args.get("esp", "generic"))
    campaign = services().campaigns.require_campaign(campaign_id)
    block = services().campaigns.require_block(campaign_id, block_id)
    target = block_target(
        block,
        request.args.get("token_field", DEFAULT_TOKEN_FIELD),
        request.args.get("alt"),
        allowed_key_field(campaign, request.args.get("key_field")),
    )
    code = embed_code(target, chosen.name, services().settings.public_url)
    return jsonify(EmbedAnswer.model_validate(code.as_dict()).model_dump(mode="json"))


class NewsletterEmbedAnswer(BaseModel):
    """A whole newsletter's body for one ESP: blocks, then slots, with a web view link."""

    esp: str
    html: str = Field(description="The body as a single-column table of <a><img></a>.")
    mjml: str = Field(description="The same as an MJML document.")
    web_view_url: str = Field(description="The view-in-browser URL with the merge tags.")
    fields: dict[str, str] = Field(description="The ESP field behind each URL parameter.")
    parts: list[EmbedAnswer] = Field(description="Each block and slot on its own.")
    warnings: list[str] = Field(
        default_factory=list,
        description='Problems to fix before sending, such as an image written with alt="".',
    )


@api.operation(
    "GET",
    "/campaigns/<campaign_id>/newsletter/embed",
    summary="Embed code of the whole newsletter for an ESP (token and send merge tags)",
    tag="newsletters",
    response=NewsletterEmbedAnswer,
    query={
        "esp": QUERY_EMBED["esp"],
        "token_field": QUERY_EMBED["token_field"],
        "send_field": f"The ESP field holding the send id (default {DEFAULT_SEND_FIELD}).",
        "key_field": QUERY_EMBED["key_field"],
    },
    errors=(404, 422),
)
def newsletter_embed_code(campaign_id: str) -> ResponseReturnValue:
    """The newsletter's blocks and slots with the ESP's merge tags for token and send."""
    found = services()
    campaign = found.campaigns.require_campaign(campaign_id)
    newsletter = found.newsletters.require(campaign_id)
    blocks = [found.campaigns.require_block(campaign_id, b) for b in newsletter.blocks]
    embed = newsletter_embed(
        newsletter,
        blocks,
        dialect(request.args.get("esp", "generic")).name,
        found.settings.public_url,
        request.args.get("token_field", DEFAULT_TOKEN_FIELD),
        request.args.get("send_field", DEFAULT_SEND_FIELD),
        allowed_key_field(campaign, request.args.get("key_field")),
    )
    answer = NewsletterEmbedAnswer(
        esp=embed.esp,
        html=embed.html,
        mjml=embed.mjml,
        web_view_url=embed.web_view_url,
        fields=embed.fields,
        parts=[EmbedAnswer.model_validate(part.as_dict()) for part in embed.parts],
        warnings=list(embed.warnings),
    )
    return jsonify(answer.model_dump(mode="json"))
