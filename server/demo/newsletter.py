"""Demo newsletter: a feed of trips with generated pictures, three slots, and today's send."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from models.newsletter.audience_export import TOKEN_COLUMN
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import NewsletterSpec
from models.newsletter.sends import plan_send
from models.recipients.upserts import ScoresUpsert
from server.services import Services, audience_export

FEED_ID = "trips"
SLOTS = 3

# id, title, text, category, price, old price, badge, sky, ground
TRIPS: list[tuple[str, str, str, str, float, float | None, str, str, str]] = [
    ("lisbon", "Lisbon city break", "3 nights, old town hotel", "city_trip", 289, 349, "-17%",
     "#F6B26B", "#A64D79"),
    ("crete", "Crete beach week", "7 nights all-inclusive", "beach", 649, None, "",
     "#6FA8DC", "#F1C232"),
    ("alps", "Ski the Alps", "6 days, pass included", "ski", 899, 999, "New",
     "#CFE2F3", "#FFFFFF"),
    ("rome", "Rome, art & food", "4 nights with museum pass", "culture", 459, None, "",
     "#E69138", "#783F04"),
    ("tuscany", "Tuscan cooking class", "A weekend in a farmhouse", "food", 379, 420, "-10%",
     "#93C47D", "#38761D"),
    ("spa", "Black Forest spa", "2 nights wellness", "wellness", 259, None, "",
     "#B4A7D6", "#351C75"),
    ("barcelona", "Barcelona by the sea", "City and beach in one", "city_trip", 319, None, "",
     "#FFD966", "#CC0000"),
    ("algarve", "Algarve surf camp", "5 days, boards included", "beach", 529, None, "Hot",
     "#9FC5E8", "#E6B8AF"),
]  # fmt: skip

AFFINITIES: dict[str, dict[str, float]] = {
    "anna": {"city_trip": 0.92, "culture": 0.7, "food": 0.55, "beach": 0.3},
    "bram": {"beach": 0.88, "ski": 0.6, "wellness": 0.2},
    "chloe": {"wellness": 0.8, "food": 0.75, "city_trip": 0.4},
    "daan": {"ski": 0.95, "beach": 0.5, "culture": 0.45},
    "eva": {},
}
NO_EMAIL_CONSENT = {"eva"}


def _picture(sky: str, ground: str) -> bytes:
    """A small landscape: a sky, a sun and hills, as PNG bytes."""
    image = Image.new("RGB", (400, 300), sky)
    draw = ImageDraw.Draw(image)
    draw.ellipse((270, 40, 350, 120), fill="#FFF2CC")
    draw.polygon([(0, 300), (0, 190), (140, 130), (260, 200), (400, 150), (400, 300)], fill=ground)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _card_layout() -> dict[str, Any]:
    return {
        "type": "card",
        "layout": "horizontal",
        "image_share": 0.38,
        "image_fit": "cover",
        "title": {"text": "{{ item_title }}", "font_size": 26},
        "subtitle": {"text": "{{ item_text }}", "font_size": 18},
        "price": "{{ item_price }}",
        "old_price": "{{ item_old_price }}",
        "currency": "EUR",
        "locale": "nl_NL",
        "badge": {"text": "{{ item_badge }}"},
        "cta": {"text": "Book now", "background": "#0B7A75"},
    }


def newsletter_spec() -> NewsletterSpec:
    """Daily at 10:00 Amsterdam to likely travellers with e-mail consent, three card slots."""
    slot = {
        "width": 600,
        "height": 200,
        "layout": _card_layout(),
        "fallback": {
            "content": {
                "type": "banner",
                "background": "#34495E",
                "lines": [{"text": "More trips every morning", "font_size": 30}],
            },
            "target_url": "https://example.com/deals",
            "alt": "More trips",
        },
        "alt": "Today's pick for you",
    }
    return NewsletterSpec.model_validate(
        {
            "name": "Blank daily newsletter",
            "feed": FEED_ID,
            "schedule": {"time": "10:00", "time_zone": "Europe/Amsterdam"},
            "audience": {"score": "travel_propensity", "gte": 0.3},
            "blocks": ["hero"],
            "slots": [slot] * SLOTS,
        }
    )


@dataclass(frozen=True)
class DemoSend:
    """Today's demo send: its id and the tokens of the recipients it went to."""

    send_id: str
    tokens: dict[str, str]


def load_demo_newsletter(services: Services, campaign_id: str) -> DemoSend:
    """Store the feed (pictures uploaded as assets), affinity scores and the newsletter, then
    export today's audience, as an ESP would receive it."""
    items = []
    for item_id, title, text, category, price, old, badge, sky, ground in TRIPS:
        asset, _ = services.assets.put(_picture(sky, ground), f"{item_id}.png")
        items.append(
            ContentItem(
                id=item_id,
                title=title,
                text=text,
                category=category,
                price=price,
                old_price=old,
                badge=badge,
                image_asset=asset.id,
                url=f"https://example.com/trips/{item_id}?utm_source=blanco",
            )
        )
    services.feeds.put_items(FEED_ID, items)
    services.recipients.upsert_scores(
        ScoresUpsert.model_validate(
            {
                "recipient_id": rid,
                "computed_at": services.clock(),  # the demo's model just ran
                "scores": {f"affinity:{c}": {"value": v, "model_version": "demo"}
                           for c, v in values.items()},
            }
        )
        for rid, values in AFFINITIES.items()
        if values
    )  # fmt: skip
    newsletter, _ = services.newsletters.put(campaign_id, newsletter_spec())
    now = services.clock()
    send = plan_send(newsletter, None, now)
    rows = audience_export(services).rows(newsletter, send, now)
    return DemoSend(send.id, {row["recipient_id"]: row[TOKEN_COLUMN] for row in rows})
