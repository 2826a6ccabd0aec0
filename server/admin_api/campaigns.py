"""Admin API: campaigns, blocks (versioned), variants, fallbacks, previews and URLs."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from flask import Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field, ValidationError

from models.campaigns.specs import (
    BLOCK_SERVER_FIELDS,
    Block,
    BlockSpec,
    Campaign,
    CampaignSpec,
    FallbackContent,
    Variant,
)
from models.email_clients import classify_open
from models.errors import Conflict, FieldError, InvalidInput, NotFound, PreconditionFailed
from models.recipients.upserts import valid_recipient_id
from server.admin_api.registry import api
from server.admin_api.request_numbers import whole_number
from server.open.answers import ImageOptions
from server.open.core import BlockOpen, Decided
from server.open.routes import open_core
from server.problems import invalid
from server.services import services
from server.tokens import Identity
from server.urls import click_url, image_url

TAG_CAMPAIGNS = "campaigns"
TAG_BLOCKS = "blocks"
BLOCK = "/campaigns/<campaign_id>/blocks/<block_id>"


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the API shows it."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _block_response(block: Block, status: int = 200) -> ResponseReturnValue:
    response = jsonify(dump(block))
    response.status_code = status
    response.headers["ETag"] = f'"{block.version}"'
    return response


def _expected_version() -> int | None:
    """The version named by ``If-Match``, if the client sent one."""
    header = request.headers.get("If-Match")
    if not header:
        return None
    version = whole_number(header.strip().removeprefix("W/").strip('"'))
    if version is None:
        raise PreconditionFailed('If-Match must be a block version such as "3"')
    return version


# campaigns


@api.operation(
    "GET",
    "/campaigns",
    summary="List campaigns",
    tag=TAG_CAMPAIGNS,
    response=Campaign,
    response_list=True,
)
def list_campaigns() -> ResponseReturnValue:
    """Every campaign."""
    return jsonify([dump(c) for c in services().campaigns.list_campaigns()])


@api.operation(
    "POST",
    "/campaigns",
    summary="Create a campaign",
    tag=TAG_CAMPAIGNS,
    body=CampaignSpec,
    response=Campaign,
    status=201,
    errors=(409, 422),
)
def create_campaign(body: CampaignSpec) -> ResponseReturnValue:
    """Create a campaign."""
    campaign = services().campaigns.create_campaign(body)
    response = jsonify(dump(campaign))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_campaign_get", campaign_id=campaign.id)
    return response


@api.operation(
    "GET",
    "/campaigns/<campaign_id>",
    summary="Get a campaign",
    tag=TAG_CAMPAIGNS,
    response=Campaign,
    errors=(404,),
)
def get_campaign(campaign_id: str) -> ResponseReturnValue:
    """One campaign."""
    return jsonify(dump(services().campaigns.require_campaign(campaign_id)))


@api.operation(
    "PUT",
    "/campaigns/<campaign_id>",
    summary="Replace a campaign's settings",
    tag=TAG_CAMPAIGNS,
    body=CampaignSpec,
    body_fills=("id", "campaign_id"),
    response=Campaign,
    errors=(404, 422),
)
def put_campaign(campaign_id: str, body: CampaignSpec) -> ResponseReturnValue:
    """Replace a campaign's name and status."""
    return jsonify(dump(services().campaigns.update_campaign(body)))


@api.operation(
    "DELETE",
    "/campaigns/<campaign_id>",
    summary="Delete a campaign and its blocks",
    tag=TAG_CAMPAIGNS,
    status=204,
    errors=(404,),
)
def delete_campaign(campaign_id: str) -> ResponseReturnValue:
    """Delete a campaign."""
    services().campaigns.delete_campaign(campaign_id)
    return Response(status=204)


# blocks


@api.operation(
    "GET",
    "/campaigns/<campaign_id>/blocks",
    summary="List a campaign's blocks",
    tag=TAG_BLOCKS,
    response=Block,
    response_list=True,
    errors=(404,),
)
def list_blocks(campaign_id: str) -> ResponseReturnValue:
    """Current version of every block."""
    return jsonify([dump(b) for b in services().campaigns.list_blocks(campaign_id)])


@api.operation(
    "POST",
    "/campaigns/<campaign_id>/blocks",
    summary="Create a block",
    tag=TAG_BLOCKS,
    body=BlockSpec,
    response=Block,
    status=201,
    errors=(404, 409, 422),
)
def create_block(campaign_id: str, body: BlockSpec) -> ResponseReturnValue:
    """Create a block with its fallback and variants (version 1)."""
    block = services().campaigns.create_block(campaign_id, body)
    response = _block_response(block, 201)
    response.headers["Location"] = url_for(  # type: ignore[union-attr]
        ".get_block_get", campaign_id=campaign_id, block_id=block.id
    )
    return response


@api.operation(
    "GET",
    BLOCK,
    summary="Get the current version of a block",
    tag=TAG_BLOCKS,
    response=Block,
    errors=(404,),
)
def get_block(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Current version of a block; its ETag is the version number."""
    return _block_response(services().campaigns.require_block(campaign_id, block_id))


@api.operation(
    "PUT",
    BLOCK,
    summary="Create or replace a block (a new version)",
    tag=TAG_BLOCKS,
    body=BlockSpec,
    body_fills=("id", "block_id"),
    response=Block,
    errors=(404, 412, 422),
)
def put_block(campaign_id: str, block_id: str, body: BlockSpec) -> ResponseReturnValue:
    """Store a new version; with ``If-Match: "<version>"`` only if nobody changed it since."""
    block, created = services().campaigns.put_block(campaign_id, body, _expected_version())
    return _block_response(block, 201 if created else 200)


@api.operation(
    "DELETE",
    BLOCK,
    summary="Delete a block (its history stays for old clicks)",
    tag=TAG_BLOCKS,
    status=204,
    errors=(404,),
)
def delete_block(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Delete a block."""
    services().campaigns.delete_block(campaign_id, block_id)
    return Response(status=204)


@api.operation(
    "GET",
    f"{BLOCK}/versions",
    summary="List the kept versions of a block",
    tag=TAG_BLOCKS,
    errors=(404,),
)
def list_versions(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Version numbers still kept, oldest first."""
    services().campaigns.require_campaign(campaign_id)
    versions = services().campaigns.list_block_versions(campaign_id, block_id)
    if not versions:
        raise NotFound(f"no block {block_id!r} in campaign {campaign_id!r}")
    return jsonify({"versions": versions})


@api.operation(
    "GET",
    f"{BLOCK}/versions/<int:version>",
    summary="Get one version of a block",
    tag=TAG_BLOCKS,
    response=Block,
    errors=(404,),
)
def get_version(campaign_id: str, block_id: str, version: int) -> ResponseReturnValue:
    """A block as it was at ``version``."""
    block = services().campaigns.get_block_version(campaign_id, block_id, version)
    if block is None:
        raise NotFound(f"block {block_id!r} has no version {version}")
    return _block_response(block)


# fallback and variants (each change is a new block version)


def store_changed(campaign_id: str, block: Block, changes: dict[str, Any]) -> Block:
    """Validate the block with ``changes`` and store it as the next version; honour If-Match."""
    expected = _expected_version()
    if expected is not None and expected != block.version:
        raise PreconditionFailed(
            f"block {block.id!r} is at version {block.version}, not {expected}"
        )
    data = {**dump(block), **changes}
    for server_field in BLOCK_SERVER_FIELDS:
        data.pop(server_field, None)
    try:
        spec = BlockSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, data, "block") from None
    stored, _ = services().campaigns.put_block(campaign_id, spec, expected_version=block.version)
    return stored


@api.operation(
    "PUT",
    f"{BLOCK}/fallback",
    summary="Replace a block's fallback",
    tag=TAG_BLOCKS,
    body=FallbackContent,
    response=Block,
    errors=(404, 412, 422),
)
def put_fallback(campaign_id: str, block_id: str, body: FallbackContent) -> ResponseReturnValue:
    """Replace the generic content and URL shown when nothing targeted applies."""
    block = services().campaigns.require_block(campaign_id, block_id)
    return _block_response(store_changed(campaign_id, block, {"fallback": dump(body)}))


@api.operation(
    "GET",
    f"{BLOCK}/variants",
    summary="List a block's variants",
    tag=TAG_BLOCKS,
    response=Variant,
    response_list=True,
    errors=(404,),
)
def list_variants(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Variants of the current block version."""
    block = services().campaigns.require_block(campaign_id, block_id)
    return jsonify([dump(v) for v in block.variants])


@api.operation(
    "POST",
    f"{BLOCK}/variants",
    summary="Add a variant",
    tag=TAG_BLOCKS,
    body=Variant,
    response=Variant,
    status=201,
    errors=(404, 409, 412, 422),
)
def create_variant(campaign_id: str, block_id: str, body: Variant) -> ResponseReturnValue:
    """Add a variant (a new block version)."""
    block = services().campaigns.require_block(campaign_id, block_id)
    if block.variant(body.id):
        raise Conflict(f"variant {body.id!r} already exists in block {block_id!r}")
    variants = [dump(v) for v in block.variants] + [dump(body)]
    stored = store_changed(campaign_id, block, {"variants": variants})
    response = jsonify(dump(body))
    response.status_code = 201
    response.headers["ETag"] = f'"{stored.version}"'
    return response


def _require_variant(block: Block, variant_id: str) -> Variant:
    variant = block.variant(variant_id)
    if variant is None:
        raise NotFound(f"no variant {variant_id!r} in block {block.id!r}")
    return variant


@api.operation(
    "GET",
    f"{BLOCK}/variants/<variant_id>",
    summary="Get a variant",
    tag=TAG_BLOCKS,
    response=Variant,
    errors=(404,),
)
def get_variant(campaign_id: str, block_id: str, variant_id: str) -> ResponseReturnValue:
    """One variant of the current block version."""
    block = services().campaigns.require_block(campaign_id, block_id)
    return jsonify(dump(_require_variant(block, variant_id)))


@api.operation(
    "PUT",
    f"{BLOCK}/variants/<variant_id>",
    summary="Replace a variant",
    tag=TAG_BLOCKS,
    body=Variant,
    body_fills=("id", "variant_id"),
    response=Variant,
    errors=(404, 412, 422),
)
def put_variant(
    campaign_id: str, block_id: str, variant_id: str, body: Variant
) -> ResponseReturnValue:
    """Replace a variant (a new block version)."""
    block = services().campaigns.require_block(campaign_id, block_id)
    _require_variant(block, variant_id)
    variant = body
    variants = [dump(variant) if v.id == variant_id else dump(v) for v in block.variants]
    stored = store_changed(campaign_id, block, {"variants": variants})
    response = jsonify(dump(variant))
    response.headers["ETag"] = f'"{stored.version}"'
    return response


@api.operation(
    "DELETE",
    f"{BLOCK}/variants/<variant_id>",
    summary="Remove a variant",
    tag=TAG_BLOCKS,
    status=204,
    errors=(404, 412),
)
def delete_variant(campaign_id: str, block_id: str, variant_id: str) -> ResponseReturnValue:
    """Remove a variant (a new block version)."""
    block = services().campaigns.require_block(campaign_id, block_id)
    _require_variant(block, variant_id)
    variants = [dump(v) for v in block.variants if v.id != variant_id]
    store_changed(campaign_id, block, {"variants": variants})
    return Response(status=204)


# what a recipient sees


class DecisionExplanation(BaseModel):
    """Which content a recipient would see at a moment, and why."""

    campaign_id: str
    block_id: str
    recipient_id: str
    at: dt.datetime
    version: int
    variant_id: str | None
    reason: str
    target_url: str


def _moment() -> dt.datetime:
    raw = request.args.get("at")
    if not raw:
        return services().clock()
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            "`at` is not an ISO 8601 time",
            [FieldError(("at",), "use e.g. 2026-11-23T10:00:00+01:00")],
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput("`at` needs a time zone", [FieldError(("at",), "add an offset")])
    return moment


def _recipient_arg() -> str:
    recipient_id = request.args.get("recipient_id", "")
    if not valid_recipient_id(recipient_id):
        raise InvalidInput(
            "a valid recipient_id query parameter is required",
            [FieldError(("recipient_id",), "1-128 characters of A-Z a-z 0-9 _ - : @ .")],
        )
    return recipient_id


def _decided(
    campaign_id: str, block_id: str, recipient_id: str, moment: dt.datetime
) -> tuple[Decided, BlockOpen]:
    """What the open core decides for the recipient at ``moment``, on the configuration as
    stored now (records nothing; Redis failures are raised, for a 503)."""
    core = open_core()
    core.config.refresh(force=True)
    opened = core.load_block(campaign_id, block_id, Identity(recipient_id), moment)
    client = classify_open(request.args.get("user_agent"))
    # decided for the named recipient even when erased, so the reason says so
    decision, shown = core.engine.decide(opened.snapshot, recipient_id, moment, client)
    return Decided(decision, shown), opened


QUERY_PREVIEW = {
    "recipient_id": "The recipient (required).",
    "at": "ISO 8601 moment to decide for (default: now).",
    "user_agent": "User-Agent to classify the client as (default: none).",
}


@api.operation(
    "GET",
    f"{BLOCK}/decision",
    summary="Explain what a recipient sees at a moment",
    tag=TAG_BLOCKS,
    response=DecisionExplanation,
    query=QUERY_PREVIEW,
    errors=(404, 422),
)
def explain_decision(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """Decide for ``recipient_id`` at ``at`` without recording anything."""
    recipient_id, moment = _recipient_arg(), _moment()
    services().campaigns.require_block(campaign_id, block_id)
    decided, _ = _decided(campaign_id, block_id, recipient_id, moment)
    decision = decided.decision
    explanation = DecisionExplanation(
        campaign_id=campaign_id,
        block_id=block_id,
        recipient_id=recipient_id,
        at=moment,
        version=decision.version,
        variant_id=decision.variant_id,
        reason=decision.reason,
        target_url=decided.shown.target_url(decision.variant_id),
    )
    return jsonify(explanation.model_dump(mode="json"))  # keeps ``variant_id: null``


@api.operation(
    "GET",
    f"{BLOCK}/preview",
    summary="Render what a recipient sees at a moment",
    tag=TAG_BLOCKS,
    response_media_type="image/png",
    query=QUERY_PREVIEW,
    errors=(404, 422),
)
def preview(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """The image ``recipient_id`` would get at ``at``; nothing is recorded."""
    recipient_id, moment = _recipient_arg(), _moment()
    services().campaigns.require_block(campaign_id, block_id)
    decided, opened = _decided(campaign_id, block_id, recipient_id, moment)
    answer = open_core().draw(decided, opened.visitor, opened.snapshot, moment, ImageOptions())
    return Response(
        answer.image.body, mimetype=answer.image.media_type, headers={"Cache-Control": "no-store"}
    )


class RecipientUrls(BaseModel):
    """A recipient's signed token and the block's image and click URLs carrying it."""

    recipient_id: str
    token: str
    image_url: str
    click_url: str
    retina_image_url: str
    width: int
    height: int
    html: str = Field(description="Copy-paste <a><img></a> with explicit width, height and alt.")


@api.operation(
    "GET",
    f"{BLOCK}/urls",
    summary="Signed image and click URLs for a recipient",
    tag=TAG_BLOCKS,
    response=RecipientUrls,
    query={"recipient_id": "The recipient (required)."},
    errors=(404, 422),
)
def recipient_urls(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """The URLs to put in one recipient's email."""
    recipient_id = _recipient_arg()
    block = services().campaigns.require_block(campaign_id, block_id)
    token = services().signer.sign(recipient_id)
    base = services().settings.public_url
    image, click = (
        image_url(base, campaign_id, block_id, token),
        click_url(base, campaign_id, block_id, token),
    )
    retina = f"{image}&dpr=2"
    html = (
        f'<a href="{escape(click)}"><img src="{escape(retina)}" width="{block.width}" '
        f'height="{block.height}" alt="{escape(block.fallback.alt)}" '
        f'style="display:block;border:0;width:100%;max-width:{block.width}px;height:auto"></a>'
    )
    urls = RecipientUrls(
        recipient_id=recipient_id,
        token=token,
        image_url=image,
        click_url=click,
        retina_image_url=retina,
        width=block.width,
        height=block.height,
        html=html,
    )
    return jsonify(dump(urls))
