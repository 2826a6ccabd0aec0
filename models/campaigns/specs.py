"""Campaign configuration: campaign → blocks → variants, each block with its fallback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from models.campaigns.conditions import Condition
from models.campaigns.experiments import Experiment
from models.campaigns.live_data import MAX_REQUIRED_SOURCES, SourceName
from renderers.html import HtmlContent
from renderers.registry import ContentParams

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""Ids of campaigns, blocks and variants: lower-case letters, digits, ``-`` and ``_``."""

MAX_PIXELS_PER_BLOCK = 2400 * 2400


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    if any(c.isspace() for c in url):
        raise ValueError("must not contain white space")
    return url


TargetUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


LIVE_HTML = "Live HTML of this content for the web view and AMP; absent: the image."


class FallbackContent(_Model):
    """What a block shows and where it links when nothing targeted applies."""

    content: ContentParams
    target_url: TargetUrl
    alt: str = Field("", max_length=300)
    html: HtmlContent | None = Field(None, description=LIVE_HTML)


class Variant(_Model):
    """One candidate content of a block, with its targeting."""

    id: Slug
    name: str = Field("", max_length=200)
    priority: int = Field(0, ge=-1000, le=1000, description="Higher is evaluated first.")
    weight: float = Field(
        1.0, ge=0, le=1000, description="Share in an A/B split among equal-priority matches."
    )
    when: Condition | None = Field(None, description="Targeting; absent means everyone.")
    requires_live: list[SourceName] = Field(
        default_factory=list,
        max_length=MAX_REQUIRED_SOURCES,
        description="Live sources this variant shows; it is skipped (the next variant or the "
        "fallback shows) while any of them is stale or missing.",
    )
    content: ContentParams
    target_url: TargetUrl
    alt: str = Field("", max_length=300)
    html: HtmlContent | None = Field(None, description=LIVE_HTML)


class BlockSpec(_Model):
    """A block as an admin writes it."""

    id: Slug
    name: str = Field("", max_length=200)
    width: int = Field(600, ge=1, le=2400)
    height: int = Field(200, ge=1, le=2400)
    lock_on_first_open: bool = Field(
        False, description="Later opens show what the first open showed."
    )
    fallback: FallbackContent
    variants: list[Variant] = Field(default_factory=list, max_length=100)
    experiment: Experiment | None = Field(
        None, description="Holdout, pilot and split/bandit among equal-priority variants."
    )

    @model_validator(mode="after")
    def _unique_variants(self) -> BlockSpec:
        seen: set[str] = set()
        for variant in self.variants:
            if variant.id in seen:
                raise ValueError(f"variant id {variant.id!r} appears twice")
            seen.add(variant.id)
        if self.width * self.height > MAX_PIXELS_PER_BLOCK:
            raise ValueError("width × height is too large")
        return self

    def variant(self, variant_id: str) -> Variant | None:
        """The variant with ``variant_id``, if any."""
        return next((v for v in self.variants if v.id == variant_id), None)

    def shown(self, variant_id: str | None) -> Variant | FallbackContent:
        """What a decision for ``variant_id`` shows: that variant, else (None, or a variant
        this version does not have) the fallback."""
        variant = self.variant(variant_id) if variant_id else None
        return variant if variant is not None else self.fallback

    def target_url(self, variant_id: str | None) -> str:
        """Where a click on what ``variant_id`` showed goes (the fallback's URL if nothing)."""
        return self.shown(variant_id).target_url


class Block(BlockSpec):
    """A stored block version: the spec plus the campaign, version number and time."""

    campaign_id: Slug
    version: int = Field(ge=1)
    updated_at: dt.datetime
    variant_order: list[Slug] = Field(
        default_factory=list,
        description="The variants' ids in the order they were first stored (kept by the "
        "server: reordering the variant list does not change it; a variant removed and added "
        "again counts as new).",
    )

    def first_created(self, among: Collection[str]) -> str | None:
        """The first-created variant of those in ``among`` (by ``variant_order``; a block
        stored before it was kept falls back to the list's order)."""
        order = self.variant_order or [variant.id for variant in self.variants]
        return next((variant_id for variant_id in order if variant_id in among), None)


BLOCK_SERVER_FIELDS = frozenset(Block.model_fields) - frozenset(BlockSpec.model_fields)
"""What the server keeps on a stored block (campaign, version, time, variant order): a block
written back must leave them out."""


def variant_order(previous: Block | None, spec: BlockSpec) -> list[str]:
    """The creation order of ``spec``'s variants, given the block's previous version."""
    kept = (previous.variant_order or [v.id for v in previous.variants]) if previous else []
    ids = [variant.id for variant in spec.variants]
    order = [variant_id for variant_id in kept if variant_id in ids]
    return order + [variant_id for variant_id in ids if variant_id not in order]


class CampaignSpec(_Model):
    """A campaign as an admin writes it."""

    id: Slug
    name: str = Field("", max_length=200)
    status: Literal["active", "paused"] = Field(
        "active", description="A paused campaign shows every block's fallback."
    )
    subscriber_keys: bool = Field(
        False,
        description="Also accept the ESP's own subscriber key, unsigned, in URLs (`k=`) instead "
        "of a signed token; content for it is restricted: decided for the recipient but drawn "
        "without profile fields, since anyone can edit an unsigned key.",
    )


class Campaign(CampaignSpec):
    """A stored campaign."""

    created_at: dt.datetime
    updated_at: dt.datetime
