"""The blank daily newsletter: a campaign's schedule, audience rule and slots.

A newsletter belongs to a campaign (so the campaign's status pauses it and its reports count
it). Each day it goes out to the recipients its audience rule selects at export time; each of
its slots is an image+link pair that is filled at open with the recipient's i-th ranked item of
the content feed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from models.campaigns.conditions import WEEKDAYS, Condition, LocalTime, recipient_zone
from models.campaigns.specs import FallbackContent, Slug
from models.recipients.upserts import AttributeName
from renderers.html import HtmlContent
from renderers.registry import ContentParams
from renderers.time_zones import time_zone

MAX_SLOTS = 12
SLOT_BLOCK = re.compile(r"^slot-([1-9][0-9]?)$")
"""Slots are measured as the blocks ``slot-1`` … ``slot-N`` of the campaign."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


SLOT_BLOCK_PREFIX = "slot-"


def slot_block_id(slot: int) -> str:
    """The block id a slot's opens and clicks are counted under."""
    return f"{SLOT_BLOCK_PREFIX}{slot}"


def _zone_name(name: str) -> str:
    time_zone(name)  # ValueError for an unknown zone
    return name


def _every_day() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Model):
    """When the newsletter goes out: a local time on some weekdays."""

    time: LocalTime = Field(dt.time(10, 0), description="Local send time, e.g. `10:00`.")
    time_zone: Annotated[str, AfterValidator(_zone_name)] = "Europe/Amsterdam"
    weekdays: list[Weekday] = Field(default_factory=_every_day, min_length=1)

    def sends_on(self, day: dt.date) -> bool:
        """Whether the newsletter goes out on ``day``."""
        return WEEKDAYS[day.weekday()] in self.weekdays

    def send_time(self, day: dt.date) -> dt.datetime:
        """The moment of the send on ``day``, in UTC."""
        zone = recipient_zone({}, default=self.time_zone)
        local = dt.datetime.combine(day, self.time.replace(tzinfo=None), tzinfo=zone)
        return local.astimezone(dt.UTC)

    def today(self, now: dt.datetime) -> dt.date:
        """The local date at ``now``."""
        return now.astimezone(recipient_zone({}, default=self.time_zone)).date()


class Slot(_Model):
    """One image+link pair of the email, filled at open with a ranked feed item."""

    width: int = Field(600, ge=1, le=2400)
    height: int = Field(200, ge=1, le=2400)
    layout: ContentParams = Field(
        description="The renderer params that draw an item; texts read `{{ item_title }}`, "
        "`{{ item_text }}`, `{{ item_price }}`, … and the profile's fields. A card without an "
        "`image_asset` shows the item's image."
    )
    fallback: FallbackContent = Field(description="Shown when no item is left for the slot.")
    alt: str = Field("", max_length=300, description="Alt text in the embed code.")
    html: HtmlContent = Field(
        HtmlContent(template="feed_item.html"),
        description="Live HTML of the slot's item for the web view (fields as the layout's, "
        "plus `click_url`, `image_url`, `item_price_text`, `item_old_price_text`).",
    )


class Ranking(_Model):
    """How eligible items are ordered for a recipient."""

    affinity_prefix: str = Field(
        "affinity:",
        max_length=64,
        description="An item of category `c` is weighted by the score `<prefix>c`.",
    )
    default_affinity: float = Field(
        0.5, ge=0, le=1000, description="Weight of a category the recipient has no score for."
    )
    max_per_category: int = Field(
        1, ge=0, le=MAX_SLOTS, description="At most this many items of one category; 0: no limit."
    )
    fatigue_sends: int = Field(
        5,
        ge=0,
        le=30,
        description="Fatigue looks at the recipient's last this many sends (that they opened): "
        "an item shown in them and not clicked since is demoted. 0: no fatigue.",
    )
    fatigue_decay: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Each of those sends that showed an item without a click multiplies its "
        "weight by this.",
    )
    max_in_a_row: int = Field(
        3,
        ge=0,
        le=30,
        description="An item shown without a click in each of the recipient's last this many "
        "sends is left out of the next. 0: no limit.",
    )
    exclude_bought: bool = Field(
        True, description="Leave out the items the recipient has bought (an order's `items`)."
    )
    exclude_bought_categories: list[Slug] = Field(
        default_factory=list,
        max_length=100,
        description="Categories in which one purchase leaves every item out, e.g. a trip "
        "(no second booking for the same trip).",
    )
    popularity_weight: float = Field(
        0.5,
        ge=0,
        le=4,
        description="How much an item's click and conversion rates among recipients of the "
        "same persona (learned from Blanco's own counts) move its weight; 0: not at all.",
    )
    exploration_share: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="This share of recipients' emails (drawn per recipient and day) show "
        "eligible items in random order, marked as explored: what an offline replay of the "
        "ranking needs (`blanco replay`). 0: none.",
    )
    novelty_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="At least this share of the slots (rounded up) goes to items the recipient "
        "has not been shown in their kept sends.",
    )

    def priority_times_affinity(self) -> Ranking:
        """These rules with every rule across days off: the ranking before them (priority ×
        affinity, the category cap), which an offline replay compares with."""
        return self.model_copy(
            update={
                "fatigue_sends": 0,
                "max_in_a_row": 0,
                "exclude_bought": False,
                "exclude_bought_categories": [],
                "popularity_weight": 0.0,
                "exploration_share": 0.0,
                "novelty_share": 0.0,
            }
        )


class NewsletterSpec(_Model):
    """A newsletter as an admin writes it."""

    name: str = Field("", max_length=200)
    feed: Slug = Field(description="The content feed the slots are filled from.")
    schedule: Schedule = Field(default_factory=Schedule)
    audience: Condition | None = Field(
        None, description="Who gets it, e.g. a score threshold; absent means every profile."
    )
    require_consent: bool = Field(
        True,
        description="Send only to profiles whose `consent_attribute` is `true`; false sends to "
        "every profile the audience rule selects.",
    )
    consent_attribute: AttributeName = "consent_email"
    holdout: float = Field(
        0.0, ge=0, le=0.5, description="Share of the audience held out of each send (control)."
    )
    holdout_rotation: Literal["persistent", "per_send"] = Field(
        "persistent",
        description="`persistent`: the same recipients are held out of every send (a stable "
        "hash of recipient and campaign), which measures the newsletter's lift over time. "
        "`per_send`: each send draws its own holdout (a hash of recipient, campaign and send "
        "date), so nobody is left out for good.",
    )
    esp_fields: list[AttributeName] = Field(
        default_factory=lambda: ["email", "first_name"],
        max_length=50,
        description="Profile attributes the audience export hands to the ESP.",
    )
    blocks: list[Slug] = Field(
        default_factory=list,
        max_length=20,
        description="The campaign's blocks that come before the slots in the email, in order "
        "(the web view shows them so).",
    )
    slots: list[Slot] = Field(min_length=1, max_length=MAX_SLOTS)
    ranking: Ranking = Field(default_factory=Ranking)

    @field_validator("esp_fields")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("a field is listed twice")
        return names


class Newsletter(NewsletterSpec):
    """A stored newsletter: the spec plus its campaign, version and time."""

    campaign_id: Slug
    version: int = Field(ge=1)
    updated_at: dt.datetime
