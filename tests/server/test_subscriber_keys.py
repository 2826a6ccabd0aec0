"""ESP subscriber keys instead of signed tokens, for campaigns that allow them: the content is
decided for the recipient but drawn without profile fields; other campaigns ignore the key."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

from models.campaigns.specs import CampaignSpec
from models.measurement.event_stream import campaign_event_entries
from models.storage import keys
from server.services import Services
from tests.esp_merges import elements, mailchimp
from tests.factories import (
    AdminApi,
    corner_color,
    error_pointers,
    hex_rgb,
    landing,
    store_block,
    store_recipient,
    variant,
)
from tests.newsletter_fixtures import item, store_newsletter

GOLD = "#0B7A75"


@pytest.fixture
def gold(services: Services) -> None:
    store_block(
        services,
        [
            variant(
                "gold", {"attr": "tier", "eq": "gold"}, background=GOLD, text="Hi {{ first_name }}"
            )
        ],
    )
    store_recipient(services, "anna", {"first_name": "Anna", "tier": "gold"})


def allow_keys(services: Services, allowed: bool = True) -> None:
    services.campaigns.update_campaign(CampaignSpec(id="daily", subscriber_keys=allowed))


@pytest.mark.usefixtures("gold")
def test_an_allowed_key_decides_for_the_recipient_without_drawing_their_profile(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    allow_keys(services)
    by_key = client.get("/i/daily/hero.png?k=anna")
    assert corner_color(by_key.data) == hex_rgb(GOLD)  # the variant only Anna matches
    by_token = client.get(f"/i/daily/hero.png?r={services.signer.sign('anna')}")
    assert corner_color(by_token.data) == hex_rgb(GOLD)
    assert by_key.headers["ETag"] != by_token.headers["ETag"]  # drawn without "Anna"
    assert landing(client.get("/c/daily/hero?k=anna")) == "https://shop.example/gold"
    kinds = [f["type"] for _, f in campaign_event_entries(redis_client, "daily")]
    assert kinds == ["open", "open", "click"]


@pytest.mark.usefixtures("gold")
def test_a_campaign_that_does_not_allow_keys_ignores_them(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    allow_keys(services, allowed=False)
    response = client.get("/i/daily/hero.png?k=anna")
    assert response.headers["X-Blanco-Fallback"] == "no verified recipient"
    assert landing(client.get("/c/daily/hero?k=anna")) == "https://shop.example/generic"
    assert not redis_client.exists(keys.decisions("anna"))
    assert not campaign_event_entries(redis_client, "daily")


@pytest.mark.usefixtures("gold")
def test_slots_take_allowed_keys_and_never_draw_the_profile(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_newsletter(services, [item("a", "x"), item("b", "y")], slots=2)
    allow_keys(services)
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
    keyed = client.get("/s/daily/1.png?k=anna&s=2026-11-23")
    signed = client.get(f"/s/daily/1.png?r={services.signer.sign('anna')}&s=2026-11-23")
    assert keyed.status_code == signed.status_code == 200
    assert keyed.headers["ETag"] != signed.headers["ETag"]  # same item, no first name drawn
    assert redis_client.hexists(keys.rankings("anna"), "daily/2026-11-23")
    allow_keys(services, allowed=False)
    assert client.get("/s/daily/2?k=bram&s=2026-11-23").status_code == 302
    assert not redis_client.exists(keys.rankings("bram"))


@pytest.mark.usefixtures("gold")
def test_the_embed_code_uses_the_key_field_only_where_allowed(
    client: FlaskClient, admin_headers: dict[str, str], services: Services
) -> None:
    api = AdminApi(client, admin_headers)
    query = {"esp": "mailchimp", "key_field": "uniqid"}
    refused = api.get("/campaigns/daily/blocks/hero/embed", query_string=query)
    assert error_pointers(refused) == [("/key_field", "key_field")]
    allow_keys(services)
    answer = api.get("/campaigns/daily/blocks/hero/embed", query_string=query).get_json()
    assert answer["click_url"] == "http://blanco.test/c/daily/hero?k=*|UNIQID|*"
    merged = mailchimp(answer["html"], {"uniqid": "anna"})
    (src,) = [a["src"] for tag, a in elements(merged) if tag == "img"]
    assert src is not None
    assert corner_color(client.get(src.removeprefix("http://blanco.test")).data) == hex_rgb(GOLD)


def test_the_web_view_takes_an_allowed_key_with_restricted_content(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    greeting = {"source": "<h1>Hello {{ first_name }}</h1>", "defaults": {"first_name": "you"}}
    hero = variant("gold", {"attr": "tier", "eq": "gold"}, background=GOLD)
    store_block(services, [{**hero, "html": greeting}])
    store_newsletter(services, [item("a", "x"), item("b", "y")], slots=2, blocks=["hero"])
    store_recipient(services, "anna", {"first_name": "Anna", "tier": "gold", "consent_email": True})
    allow_keys(services)
    page = client.get("/v/daily?k=anna&s=2026-11-23").get_data(as_text=True)
    assert "<h1>Hello you</h1>" in page  # Anna's variant, drawn without her name
    assert "Anna" not in page
    assert "/s/daily/1?k=anna&amp;s=2026-11-23" in page
    assert redis_client.hexists(keys.rankings("anna"), "daily/2026-11-23")
    allow_keys(services, allowed=False)
    page = client.get("/v/daily?k=bram&s=2026-11-23").get_data(as_text=True)
    assert "k=bram" not in page
    assert not redis_client.exists(keys.rankings("bram"))


@pytest.mark.usefixtures("gold")
def test_a_genuine_token_wins_over_a_key(client: FlaskClient, services: Services) -> None:
    allow_keys(services)
    store_recipient(services, "bram", {"first_name": "Bram", "tier": "silver"})
    token = services.signer.sign("anna")
    both = client.get(f"/i/daily/hero.png?r={token}&k=bram")
    alone = client.get(f"/i/daily/hero.png?r={token}")
    assert corner_color(both.data) == hex_rgb(GOLD)  # Anna's, not Bram's
    assert both.data == alone.data  # drawn with her name: the signed, full content
    assert landing(client.get(f"/c/daily/hero?r={token}&k=bram")) == "https://shop.example/gold"
    # a bad token does not win: the key is used, with restricted content
    by_key = client.get("/i/daily/hero.png?r=anna.forged&k=anna")
    assert corner_color(by_key.data) == hex_rgb(GOLD)
    assert by_key.data != alone.data
