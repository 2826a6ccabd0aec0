"""Cross-channel newsletter slots: the site shows the picks this recipient's email shows."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.recipients.upserts import ScoresUpsert
from models.storage import keys
from server.services import Services
from tests.factories import FALLBACK_URL, landing, problem, store_recipient
from tests.newsletter_fixtures import click_url, item, slot_url, store_newsletter

SEND = "2026-11-23"
SLOTS = "/x/v1/campaigns/daily/slots"
ITEMS = [
    item("amsterdam", "city_trip", priority=1.0),
    item("paris", "city_trip", priority=0.9),
    item("crete", "beach", priority=1.0),
    item("zermatt", "ski", priority=0.7),
    item("rome", "culture", priority=0.8),
    item("vip-lounge", "lounge", when={"segment": "vip"}),
]


@pytest.fixture
def channel_headers(services: Services) -> dict[str, str]:
    _, key = services.api_keys.create("website", ["channel"])
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def anna(services: Services) -> str:
    scores = {"affinity:beach": 0.9, "affinity:ski": 0.8, "affinity:city_trip": 0.2}
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True}, scores)
    return "anna"


def slots(
    client: FlaskClient, headers: dict[str, str], token: str | None, send: str | None = SEND
) -> dict[str, Any]:
    query = {k: v for k, v in {"r": token, "s": send}.items() if v}
    response = client.get(SLOTS, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store, private"
    body: dict[str, Any] = response.get_json()
    return body


def opened_items(redis_client: redis.Redis) -> dict[int, str]:
    """Slot number -> item id, from the open events of the campaign's stream."""
    return {
        int(fields["block"].removeprefix("slot-")): fields["variant"]
        for _, fields in campaign_event_entries(redis_client, "daily")
        if fields["type"] == "open"
    }


def clicked(client: FlaskClient, services: Services, recipient_id: str, slot: int) -> str:
    response = client.get(click_url(services, recipient_id, slot, SEND))
    assert response.status_code == 302
    return landing(response)


def test_the_site_shows_what_the_slot_images_showed(
    client: FlaskClient,
    services: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
    anna: str,
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    for slot in (1, 2, 3):
        assert client.get(slot_url(services, anna, slot, SEND)).status_code == 200
    services.recipients.upsert_scores(  # after the open: the email's picks hold
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": anna,
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": {"affinity:ski": 0.0},
                }
            )
        ]
    )

    body = slots(client, channel_headers, services.signer.sign(anna))

    shown = opened_items(redis_client)
    assert [s["item"] for s in body["slots"]] == [shown[1], shown[2], shown[3]]
    assert [s["item"] for s in body["slots"]] == ["crete", "zermatt", "rome"]
    assert [s["url"] for s in body["slots"]] == [
        clicked(client, services, anna, n) for n in (1, 2, 3)
    ]
    first = body["slots"][0]
    assert {k: first[k] for k in ("slot", "item", "title", "url", "category", "fallback")} == {
        "slot": 1,
        "item": "crete",
        "title": "Trip crete",
        "url": "https://shop.example/items/crete",
        "category": "beach",
        "fallback": False,
    }
    assert (body["campaign"], body["send"], body["generic"]) == ("daily", SEND, False)
    assert "Anna" not in repr(body)


def test_asked_before_the_open_the_email_then_shows_the_same(
    client: FlaskClient,
    services: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
    anna: str,
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    body = slots(client, channel_headers, services.signer.sign(anna))
    services.recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": anna,
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": {"affinity:ski": 0.0},
                }
            )
        ]
    )
    for slot in (1, 2):
        client.get(slot_url(services, anna, slot, SEND))
    assert opened_items(redis_client) == {1: body["slots"][0]["item"], 2: body["slots"][1]["item"]}


@pytest.mark.parametrize("token", [None, "anna", "anna.forged-signature"])
def test_a_missing_or_bad_token_gets_the_generic_picks(
    client: FlaskClient,
    services: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
    anna: str,
    token: str | None,
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    body = slots(client, channel_headers, token)
    assert body["generic"] is True
    assert [s["item"] for s in body["slots"]] == ["amsterdam", "crete", "rome"]  # priority only
    assert "vip-lounge" not in repr(body)
    assert redis_client.exists(keys.rankings(anna)) == 0


def test_a_slot_with_no_item_left_links_to_its_fallback(
    client: FlaskClient, services: Services, channel_headers: dict[str, str], anna: str
) -> None:
    store_newsletter(services, ITEMS[:1], slots=2)
    body = slots(client, channel_headers, services.signer.sign(anna))
    second = body["slots"][1]
    assert {k: second[k] for k in ("slot", "item", "title", "url", "fallback", "image")} == {
        "slot": 2,
        "item": None,
        "title": "Your trip",  # the fallback's alt, else the slot's
        "url": FALLBACK_URL,
        "fallback": True,
        "image": "",
    }


def test_slots_record_no_open_or_click(
    client: FlaskClient,
    services: Services,
    channel_headers: dict[str, str],
    redis_client: redis.Redis,
    anna: str,
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    slots(client, channel_headers, services.signer.sign(anna))
    assert len(campaign_event_entries(redis_client, "daily")) == 0
    assert list(redis_client.scan_iter(match="blanco:ev:*")) == []


def test_a_campaign_without_a_newsletter_is_a_404_problem(
    client: FlaskClient, services: Services, channel_headers: dict[str, str], anna: str
) -> None:
    response = client.get(
        "/x/v1/campaigns/nope/slots",
        query_string={"r": services.signer.sign(anna)},
        headers=channel_headers,
    )
    problem(response, 404)


def test_slots_need_a_channel_key(client: FlaskClient, services: Services) -> None:
    store_newsletter(services, ITEMS, slots=1)
    problem(client.get(SLOTS), 401)
