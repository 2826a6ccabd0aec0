"""Demo data: a travel-style daily newsletter (a hero block and feed-filled slots) and six
recipients with scores (whose keys fall on every node of a three-primary Redis Cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.campaigns.specs import BLOCK_SERVER_FIELDS, BlockSpec, CampaignSpec
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from server.demo.newsletter import load_demo_newsletter
from server.services import Services
from server.urls import click_url, image_url

CAMPAIGN_ID = "daily"
BLOCK_ID = "hero"


def _banner(background: str, headline: str, subline: str, color: str = "#FFFFFF") -> dict[str, Any]:
    return {
        "type": "banner",
        "background": background,
        "defaults": {"first_name": "traveller"},
        "lines": [
            {"text": headline, "font_size": 40, "color": color, "weight": "bold"},
            {"text": subline, "font_size": 22, "color": color},
        ],
    }


DEMO_BLOCK: dict[str, Any] = {
    "id": BLOCK_ID,
    "name": "Daily hero",
    "width": 600,
    "height": 200,
    "fallback": {
        "content": _banner(
            "#34495E", "Discover today's travel deals", "Fresh offers every morning"
        ),
        "target_url": "https://example.com/deals",
        "alt": "Today's travel deals",
    },
    "variants": [
        {
            "id": "city-trip",
            "name": "Likely travellers who are active customers",
            "priority": 30,
            "when": {
                "all": [
                    {"score": "travel_propensity", "gte": 0.7},
                    {"attr": "lifecycle", "in": ["new", "active"]},
                ]
            },
            "content": _banner(
                "#0B7A75", "{{ first_name }}, your city trip awaits", "Weekend breaks from € 149"
            ),
            "target_url": "https://example.com/trips/city?utm_source=blanco",
            "html": {
                "source": '<div class="greeting"><h1>{{ first_name }}, your city trip awaits'
                "</h1><p>Weekend breaks from € 149</p>"
                '<a class="button" href="{{ click_url }}">See the trips</a></div>',
                "defaults": {"first_name": "Traveller"},
            },
        },
        {
            "id": "win-back",
            "name": "Lapsed customers",
            "priority": 20,
            "when": {"attr": "lifecycle", "in": ["lapsing", "lapsed"]},
            "content": _banner(
                "#C0392B", "We miss you, {{ first_name }}", "Here is 10% off your next trip"
            ),
            "target_url": "https://example.com/welcome-back?utm_source=blanco",
        },
        {
            "id": "inspiration",
            "name": "Warming up",
            "priority": 10,
            "when": {"score": "travel_propensity", "gte": 0.4},
            "content": _banner(
                "#F4D03F",
                "Dreaming of sun, {{ first_name }}?",
                "Our guide to winter sun",
                "#1B2631",
            ),
            "target_url": "https://example.com/inspiration/winter-sun?utm_source=blanco",
        },
    ],
}


def _person(
    recipient_id: str, first_name: str, lifecycle: str, time_zone: str, email: bool = True
) -> dict[str, Any]:
    """A demo profile; its address is ASCII (from the id: most ESPs refuse a non-ASCII local
    part on import), its display name as written (Chloé)."""
    return {
        "first_name": first_name,
        "email": f"{recipient_id}@example.com",
        "lifecycle": lifecycle,
        "time_zone": time_zone,
        "consent_email": email,
    }


DEMO_RECIPIENTS: list[tuple[str, dict[str, Any], float]] = [
    ("anna", _person("anna", "Anna", "active", "Europe/Amsterdam"), 0.91),
    ("bram", _person("bram", "Bram", "new", "Europe/Amsterdam"), 0.78),
    ("chloe", _person("chloe", "Chloé", "lapsed", "Europe/Paris"), 0.35),
    ("daan", _person("daan", "Daan", "active", "Europe/Amsterdam"), 0.52),
    ("sara", _person("sara", "Sara", "lapsing", "Europe/Brussels"), 0.64),
    ("eva", _person("eva", "Eva", "active", "Europe/Berlin", email=False), 0.08),
]


@dataclass(frozen=True)
class DemoLink:
    """One demo recipient's URLs."""

    recipient_id: str
    image_url: str
    click_url: str


def load_demo(services: Services) -> list[DemoLink]:
    """Store the demo campaign, block and recipients (idempotent); return their URLs."""
    campaigns = services.campaigns
    if campaigns.get_campaign(CAMPAIGN_ID) is None:
        campaigns.create_campaign(CampaignSpec(id=CAMPAIGN_ID, name="Blank daily newsletter"))
    spec = BlockSpec.model_validate(DEMO_BLOCK)
    current = campaigns.get_block(CAMPAIGN_ID, BLOCK_ID)
    if (
        current is None
        or BlockSpec.model_validate(current.model_dump(exclude=set(BLOCK_SERVER_FIELDS))) != spec
    ):
        campaigns.put_block(CAMPAIGN_ID, spec)
    services.recipients.upsert_profiles(
        ProfileUpsert(recipient_id=rid, attributes=attributes)
        for rid, attributes, _ in DEMO_RECIPIENTS
    )
    services.recipients.upsert_scores(
        ScoresUpsert.model_validate(
            {
                "recipient_id": rid,
                "computed_at": services.clock(),  # the demo's model just ran
                "scores": {"travel_propensity": {"value": score, "model_version": "demo"}},
            }
        )
        for rid, _, score in DEMO_RECIPIENTS
    )
    load_demo_newsletter(services, CAMPAIGN_ID)
    base = services.settings.public_url
    links = []
    for rid, _, _ in DEMO_RECIPIENTS:
        token = services.signer.sign(rid)
        links.append(
            DemoLink(
                rid,
                image_url(base, CAMPAIGN_ID, BLOCK_ID, token),
                click_url(base, CAMPAIGN_ID, BLOCK_ID, token),
            )
        )
    return links
