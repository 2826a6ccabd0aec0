"""Every store that writes a pydantic model reads back what it wrote, aliases included.

The values exercise the fields whose JSON name differs from the Python name (``not``, ``in``,
``from``): a store that writes Python field names (``not_``) cannot read its own document.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from models.campaigns.live_data import LivePush
from models.campaigns.specs import BlockSpec, CampaignSpec
from models.newsletter.content_feed import ContentItem
from models.newsletter.sends import Send, SendCounts
from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.segmentation import PersonaRules
from models.recipients.upserts import ScoresUpsert
from server.services import Services
from tests.factories import banner, block, variant
from tests.newsletter_fixtures import newsletter_spec
from tests.sample_images import image_bytes

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)

ALIASED_CONDITION: dict[str, Any] = {
    "all": [
        {"not": {"attr": "country", "in": ["NL", "BE"]}},
        {"time": {"tz": "Europe/Amsterdam", "from": "2026-11-01T00:00:00+01:00"}},
        {"any": [{"score": "p", "in": [0.5, 1]}, {"not": {"segment": "vip"}}]},
    ]
}
GRADIENT_BANNER = banner(
    background="#112233",
    gradient={"from": "#000000", "to": "#FFFFFF", "direction": "vertical"},
)


def test_blocks_and_campaigns(services: Services) -> None:
    campaign = services.campaigns.create_campaign(CampaignSpec(id="daily", name="Daily"))
    assert services.campaigns.get_campaign("daily") == campaign
    spec = BlockSpec.model_validate(
        block(variants=[{**variant("v", ALIASED_CONDITION), "content": GRADIENT_BANNER}])
    )
    stored, _ = services.campaigns.put_block("daily", spec)
    assert services.campaigns.get_block("daily", "hero") == stored
    assert services.campaigns.list_blocks("daily") == [stored]
    assert services.campaigns.get_block_version("daily", "hero", stored.version) == stored


def test_newsletters(services: Services) -> None:
    services.campaigns.create_campaign(CampaignSpec(id="daily"))
    stored, _ = services.newsletters.put("daily", newsletter_spec(audience=ALIASED_CONDITION))
    assert services.newsletters.get("daily") == stored


def test_feed_items(services: Services) -> None:
    item = ContentItem.model_validate(
        {"id": "i1", "title": "T", "url": "https://shop.example/i1", "when": ALIASED_CONDITION}
    )
    services.feeds.put_items("trips", [item])
    assert services.feeds.get_item("trips", "i1") == item
    assert services.feeds.load("trips").items == {"i1": item}


def test_personas(services: Services) -> None:
    rules = PersonaRules.model_validate(
        {"rules": [{"persona": "explorer", "when": ALIASED_CONDITION}, {"persona": "rest"}]}
    )
    services.personas.put(rules)
    assert services.personas.get() == rules


def test_live_sources(services: Services) -> None:
    push = LivePush(source="flights", values={"delay": 5, "gate": "D7"}, max_age_seconds=60)
    stored = services.live.put(push, NOW)
    assert services.live.get("flights") == stored
    assert services.live.list() == [stored]


def test_sends(services: Services) -> None:
    send = Send(
        id="2026-11-23",
        campaign_id="daily",
        date=dt.date(2026, 11, 23),
        send_time=NOW,
        newsletter_version=3,
        status="exported",
        started_at=NOW,
        finished_at=NOW,
        counts=SendCounts(considered=3, audience=2, holdout=1),
    )
    services.sends.start(send)
    assert services.sends.get("daily", send.id) == send
    assert services.sends.recent("daily") == [send]


def test_asset_meta(services: Services) -> None:
    asset, _ = services.assets.put(image_bytes("PNG"), "logo.png", now=NOW)
    assert services.assets.get(asset.id) == asset
    assert services.assets.list() == [asset]


def test_api_keys(services: Services) -> None:
    key, _ = services.api_keys.create("data team", ["ingest", "channel"])
    assert services.api_keys.list() == [key]


def test_scores(services: Services) -> None:
    upsert = ScoresUpsert.model_validate(
        {
            "recipient_id": "anna",
            "scores": {"p": {"value": 0.8, "model_version": "v7", "computed_at": NOW}},
        }
    )
    services.recipients.upsert_scores([upsert])
    assert services.recipients.get_scores("anna") == upsert.scores


def test_transactions_and_events(services: Services) -> None:
    order = Transaction(
        recipient_id="anna",
        order_id="o1",
        at=NOW,
        amount=Decimal("12.50"),
        currency="EUR",
        category="city_trip",
    )
    event = CustomerEvent(
        recipient_id="anna", type="site_visit", at=NOW, channel="web", attributes={"page": "/x"}
    )
    services.customer_data.add_transactions([order])
    services.customer_data.add_events([event])
    assert services.customer_data.transactions("anna") == [order]
    assert services.customer_data.recent_events("anna") == [event]
