"""Content feed items: what newsletter slots are filled with at open time.

An item is a piece of content (an offer, an article, a trip) with its link, an optional image
asset, a category for business rules, a priority, a validity window and optional targeting.
The slot's layout (a renderer's params) reads the item through ``item_*`` placeholders.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from models.campaigns.conditions import Condition
from models.campaigns.specs import Slug, TargetUrl

ItemId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
AssetId = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ValueError("needs a time zone offset")
    return moment


Moment = Annotated[dt.datetime | None, AfterValidator(_aware)]


class ContentItem(BaseModel):
    """One item of a content feed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ItemId
    title: str = Field(min_length=1, max_length=300)
    text: str = Field("", max_length=2000)
    image_asset: AssetId | None = Field(None, description="An uploaded asset's id.")
    url: TargetUrl
    category: Slug | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    price: float | None = Field(None, ge=0, le=1e12, allow_inf_nan=False)
    old_price: float | None = Field(None, ge=0, le=1e12, allow_inf_nan=False)
    badge: str = Field("", max_length=40)
    cta: str = Field("", max_length=60, description="Call-to-action text.")
    valid_from: Moment = None
    valid_until: Moment = None
    priority: float = Field(
        1.0, ge=0, le=1000, description="Weight in the ranking (times the affinity score)."
    )
    stock: int | None = Field(
        None,
        ge=0,
        le=10**12,
        description="Units left; 0 is sold out (the item drops out of rankings made from then "
        "on, and a slot that ranked it shows its fallback). Absent: not tracked.",
    )
    available: bool = Field(
        True, description="false takes the item out of rankings as if sold out."
    )
    when: Condition | None = Field(
        None, description="Targeting; an item with targeting is never shown as generic content."
    )

    @model_validator(mode="after")
    def _window(self) -> ContentItem:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def valid_at(self, moment: dt.datetime) -> bool:
        """Whether the item may be shown at ``moment``: within its dates, available and not
        sold out."""
        if not self.available or self.stock == 0:
            return False
        if self.valid_from is not None and moment < self.valid_from:
            return False
        return self.valid_until is None or moment < self.valid_until

    def fields(self) -> dict[str, Any]:
        """The ``item_*`` placeholders a slot layout can use."""
        return {
            "item_id": self.id,
            "item_title": self.title,
            "item_text": self.text,
            "item_category": self.category or "",
            "item_price": self.price,
            "item_old_price": self.old_price,
            "item_badge": self.badge,
            "item_cta": self.cta,
        }


class FeedItemsAnswer(BaseModel):
    """A feed's items."""

    feed_id: str
    version: int
    items: list[ContentItem]
