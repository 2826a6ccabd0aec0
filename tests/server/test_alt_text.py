"""Alt text that describes: a block's alt is what its image says to this recipient, a slot's
names its item and price, in the web view, its live HTML and the AMP items."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from models.newsletter.newsletters import NewsletterSpec
from server.open.alt_text import sentences
from server.services import Services
from tests.factories import banner, landing, store_block, store_recipient
from tests.newsletter_fixtures import item, store_newsletter

SEND = "2026-11-23"
SENDER = {"AMP-Email-Sender": "news@shop.example"}
CITY_TRIP = {
    "id": "city-trip",
    "when": {"attr": "lifecycle", "eq": "active"},
    "content": {
        "type": "banner",
        "background": "#0B7A75",
        "defaults": {"first_name": "traveller"},
        "lines": [
            {"text": "{{ first_name }}, your city trip awaits"},
            {"text": "Weekend breaks from € 149"},
        ],
    },
    "target_url": "https://shop.example/city",
}
ANNA_SAYS = "Anna, your city trip awaits. Weekend breaks from € 149"
FALLBACK_ALT = "Today's travel deals"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app on https (as AMP needs), allowing the AMP sender."""
    return make_app(public_url="https://blanco.test", amp_allowed_senders="news@shop.example")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "#0B7A75").save(out, "PNG")
    return out.getvalue()


def setup(services: Services, *, fallback_alt: str = FALLBACK_ALT) -> None:
    """The hero (Anna's city trip, else the fallback) and two slots: Lisbon with a picture and
    a price, and a slot without an item, whose fallback has ``fallback_alt``."""
    store_block(services, [CITY_TRIP])
    asset, _ = services.assets.put(png(), "lisbon.png", now=services.clock())
    lisbon = item("lisbon", "city_trip", price=289, image_asset=asset.id)
    newsletter = store_newsletter(services, [lisbon], slots=2, blocks=["hero"])
    slots = [s.model_dump(mode="json") for s in newsletter.slots]
    for slot in slots:
        slot["fallback"]["alt"] = fallback_alt
    spec = newsletter.model_dump(mode="json", exclude={"campaign_id", "version", "updated_at"})
    services.newsletters.put("daily", NewsletterSpec.model_validate({**spec, "slots": slots}))
    for name, lifecycle in (("anna", "active"), ("bram", "lapsed")):
        profile = {"first_name": name.title(), "lifecycle": lifecycle, "consent_email": True}
        store_recipient(services, name, profile, {"affinity:city_trip": 0.9})


def web_view(client: FlaskClient, services: Services, recipient_id: str | None) -> str:
    token = services.signer.sign(recipient_id) if recipient_id else "forged.token"
    response = client.get(f"/v/daily?r={token}&s={SEND}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def alts(page: str) -> list[str]:
    """The alt text of every image of the page, in order."""
    return [html.unescape(alt) for alt in re.findall(r'<img [^>]*alt="([^"]*)"', page)]


def amp_items(client: FlaskClient, services: Services, recipient_id: str) -> list[dict[str, Any]]:
    token = services.signer.sign(recipient_id)
    response = client.get(f"/amp/daily/items.json?r={token}&s={SEND}", headers=SENDER)
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.get_json()["items"]
    return found


def test_the_web_view_hero_alt_is_the_recipients_banner_text(
    client: FlaskClient, services: Services
) -> None:
    setup(services)
    page = web_view(client, services, "anna")
    assert alts(page)[0] == ANNA_SAYS
    # the image and the click of that hero are Anna's city trip too: the same decision
    token = services.signer.sign("anna")
    assert landing(client.get(f"/c/daily/hero?r={token}")) == "https://shop.example/city"


def test_a_recipient_shown_the_fallback_gets_the_fallbacks_alt_and_nothing_of_anna(
    client: FlaskClient, services: Services
) -> None:
    setup(services)
    web_view(client, services, "anna")
    store_block(services, [CITY_TRIP], fallback={**_fallback(), "alt": FALLBACK_ALT})
    bram = web_view(client, services, "bram")
    assert alts(bram)[0] == FALLBACK_ALT
    stranger = web_view(client, services, None)
    assert alts(stranger)[0] == FALLBACK_ALT
    assert "Anna" not in bram + stranger


def test_without_an_alt_the_fallback_is_described_by_its_own_text(
    client: FlaskClient, services: Services
) -> None:
    setup(services)
    assert alts(web_view(client, services, "bram"))[0] == "Our offers"


def test_a_variants_own_alt_comes_first(client: FlaskClient, services: Services) -> None:
    setup(services)
    store_block(services, [{**CITY_TRIP, "alt": "City trips from € 149"}])
    assert alts(web_view(client, services, "anna"))[0] == "City trips from € 149"


def test_a_profile_value_is_escaped_in_the_alt(client: FlaskClient, services: Services) -> None:
    setup(services)
    store_recipient(services, "anna", {"first_name": "Anna <b>&"})
    page = web_view(client, services, "anna")
    assert 'alt="Anna &lt;b&gt;&amp;, your city trip awaits. Weekend' in page


def test_live_html_of_a_block_gets_the_alt(client: FlaskClient, services: Services) -> None:
    setup(services)
    live = {"source": '<img class="hero" src="/x.png" alt="{{ alt }}">'}
    store_block(services, [{**CITY_TRIP, "html": live}])
    page = web_view(client, services, "anna")
    assert f'<img class="hero" src="/x.png" alt="{ANNA_SAYS}">' in page


def test_a_slots_alt_names_its_item_and_price_and_a_fallback_its_alt(
    client: FlaskClient, services: Services
) -> None:
    setup(services)
    page = web_view(client, services, "anna")
    assert alts(page)[1:] == ["Trip lisbon, €\xa0289,00", FALLBACK_ALT]
    assert 'class="item-image"' in page  # the item's live HTML, with its picture
    found = amp_items(client, services, "anna")
    assert [i["alt"] for i in found] == ["Trip lisbon, €\xa0289,00", FALLBACK_ALT]


def test_a_slot_fallback_without_alt_takes_the_slots(
    client: FlaskClient, services: Services
) -> None:
    setup(services, fallback_alt="")
    assert alts(web_view(client, services, "anna"))[-1] == "Your trip"
    assert amp_items(client, services, "anna")[-1]["alt"] == "Your trip"


def test_the_amp_template_writes_the_items_alt(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    setup(services)
    response = client.get("/api/v1/campaigns/daily/newsletter/amp?esp=braze", headers=admin_headers)
    assert response.status_code == 200
    assert 'layout="responsive" alt="{{alt}}"></amp-img>{{/image}}' in response.get_json()["amp"]


def test_lines_join_into_sentences() -> None:
    assert sentences(["Anna, your city trip awaits", "Weekend breaks"]) == (
        "Anna, your city trip awaits. Weekend breaks"
    )
    assert sentences(["Dreaming of sun?", "", "Our guide"]) == "Dreaming of sun? Our guide"
    assert len(sentences(["x" * 400])) == 300


def _fallback() -> dict[str, Any]:
    return {
        "content": banner("Our offers", "#808080"),
        "target_url": "https://shop.example/generic",
    }
