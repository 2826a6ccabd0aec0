"""Admin API: copy-paste embed code of a block in an ESP's merge-tag dialect."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from server.admin_api.campaigns import BLOCK, TAG_BLOCKS
from server.admin_api.registry import api
from server.embed_codes import DEFAULT_TOKEN_FIELD, DIALECTS, block_target, dialect, embed_code
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


QUERY_EMBED = {
    "esp": f"Merge-tag dialect: {', '.join(DIALECTS)} (default generic).",
    "token_field": f"The ESP field holding the recipient's token (default {DEFAULT_TOKEN_FIELD}).",
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
    block = services().campaigns.require_block(campaign_id, block_id)
    target = block_target(
        block, request.args.get("token_field", DEFAULT_TOKEN_FIELD), request.args.get("alt")
    )
    code = embed_code(target, chosen.name, services().settings.public_url)
    return jsonify(EmbedAnswer.model_validate(code.as_dict()).model_dump(mode="json"))
