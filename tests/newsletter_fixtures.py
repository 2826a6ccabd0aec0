"""Factories for newsletters, content feeds and sends, so tests state only what matters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from models.campaigns.specs import CampaignSpec
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Newsletter, NewsletterSpec
from models.newsletter.sends import Send, SendCounts, send_id_for
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from models.storage import keys
from server.services import Services
from tests.factories import FALLBACK_URL, banner

FEED = "trips"


def item(item_id: str, category: str | None = None, **extra: Any) -> ContentItem:
    """A content item whose URL names it."""
    document: dict[str, Any] = {
        "id": item_id,
        "title": f"Trip {item_id}",
        "url": f"https://shop.example/items/{item_id}",
        **extra,
    }
    if category is not None:
        document["category"] = category
    return ContentItem.model_validate(document)


def newsletter_spec(slots: int = 3, **extra: Any) -> NewsletterSpec:
    """A daily 10:00 Amsterdam newsletter on the ``trips`` feed with banner slots."""
    slot = {
        "width": 300,
        "height": 100,
        "layout": banner("{{ item_title }} for {{ first_name }}", "#203040"),
        "fallback": {"content": banner("More trips", "#808080"), "target_url": FALLBACK_URL},
        "alt": "Your trip",
    }
    document: dict[str, Any] = {"feed": FEED, "slots": [slot] * slots, **extra}
    return NewsletterSpec.model_validate(document)


def store_newsletter(
    services: Services,
    items: list[ContentItem],
    campaign_id: str = "daily",
    **extra: Any,
) -> Newsletter:
    """Create the campaign (if needed), fill the feed and store the newsletter."""
    if services.campaigns.get_campaign(campaign_id) is None:
        services.campaigns.create_campaign(CampaignSpec(id=campaign_id))
    services.feeds.put_items(FEED, items)
    newsletter, _ = services.newsletters.put(campaign_id, newsletter_spec(**extra))
    return newsletter


def slot_url(services: Services, recipient_id: str, slot: int, send: str | None = None) -> str:
    """The image URL of a slot for a recipient (and send)."""
    url = f"/s/daily/{slot}.png?r={services.signer.sign(recipient_id)}"
    return url + (f"&s={send}" if send else "")


def click_url(services: Services, recipient_id: str, slot: int, send: str | None = None) -> str:
    """The click URL of a slot for a recipient (and send)."""
    url = f"/s/daily/{slot}?r={services.signer.sign(recipient_id)}"
    return url + (f"&s={send}" if send else "")


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment in November 2026, UTC."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def item_document(item_id: str, category: str | None = None, **extra: Any) -> dict[str, Any]:
    """``item`` as the JSON body of ``PUT /feeds/{feed}/items/{item}``."""
    return item(item_id, category, **extra).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


def newsletter_document(slots: int = 3, **extra: Any) -> dict[str, Any]:
    """``newsletter_spec`` as the JSON body of ``PUT /campaigns/{c}/newsletter``."""
    spec = newsletter_spec(slots, **extra)
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def store_subscriber(
    services: Services,
    recipient_id: str,
    consent: bool | None = True,
    scores: dict[str, float] | None = None,
    scored_at: dt.datetime | None = None,
    **attributes: Any,
) -> None:
    """Store a profile with an email address, a first name and ``consent_email`` (left out
    when ``consent`` is None), and scores computed at ``scored_at``."""
    profile: dict[str, Any] = {
        "email": f"{recipient_id}@mail.example",
        "first_name": recipient_id.title(),
        **attributes,
    }
    if consent is not None:
        profile["consent_email"] = consent
    services.recipients.upsert_profiles(
        [ProfileUpsert(recipient_id=recipient_id, attributes=profile)]
    )
    if scores:
        computed_at = (scored_at or services.clock()).isoformat()
        document = {
            name: {"value": value, "computed_at": computed_at} for name, value in scores.items()
        }
        services.recipients.upsert_scores(
            [
                ScoresUpsert.model_validate(
                    {
                        "recipient_id": recipient_id,
                        "computed_at": "2026-11-23T06:00:00Z",
                        "scores": document,
                    }
                )
            ]
        )


def record_send(
    services: Services,
    day: dt.date,
    members: list[str],
    holdout: list[str] | None = None,
    campaign_id: str = "daily",
) -> Send:
    """A send of the newsletter as its export records it, at the clock's time: its members and
    its holdout."""
    now = services.clock()
    holdout = holdout or []
    send = Send(
        id=send_id_for(day),
        campaign_id=campaign_id,
        date=day,
        send_time=now,
        newsletter_version=1,
        status="exported",
        started_at=now,
        finished_at=now,
        counts=SendCounts(audience=len(members), holdout=len(holdout)),
    )
    services.sends.start(send)
    if members:
        services.redis.sadd(keys.send_members(campaign_id, send.id), *members)
    if holdout:
        services.redis.sadd(keys.send_holdout(campaign_id, send.id), *holdout)
    return send
