"""Newsletter slots filled at open: one ranking per (recipient, send), shared by every slot."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.recipients.upserts import ScoresUpsert
from models.storage import keys
from renderers.card import CardParams
from server.open.routes import SLOTS
from server.open.slots import SlotServer
from server.services import Services
from tests.factories import FALLBACK_URL, FakeClock, decode_image, landing, store_recipient
from tests.newsletter_fixtures import click_url, item, slot_url, store_newsletter

SEND = "2026-11-23"
ITEMS = [
    item("amsterdam", "city_trip", priority=1.0),
    item("paris", "city_trip", priority=0.9),
    item("crete", "beach", priority=1.0),
    item("algarve", "beach", priority=0.8),
    item("zermatt", "ski"),
    item("rome", "culture"),
    item("lyon", "food"),
    item("spa", "wellness"),
    item("vip-lounge", "lounge", when={"segment": "vip"}),
]


def opened_items(redis_client: redis.Redis, event: str = "open") -> dict[str, str]:
    """Slot block id -> item id, from the campaign's event stream."""
    shown: dict[str, str] = {}
    for _, fields in campaign_event_entries(redis_client, "daily"):
        if fields["type"] == event:
            shown[fields["block"]] = fields["variant"]
    return shown


def affinities(**values: float) -> dict[str, float]:
    return {f"affinity:{category}": value for category, value in values.items()}


@pytest.fixture
def anna(services: Services) -> str:
    store_recipient(
        services,
        "anna",
        {"first_name": "Anna", "consent_email": True},
        affinities(beach=0.9, city_trip=0.6, ski=0.1, culture=0.5, food=0.4, wellness=0.3),
    )
    return "anna"


def test_six_parallel_fetches_show_six_distinct_items_and_clicks_follow_them(
    app: Flask, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=6)
    barrier = threading.Barrier(6)
    answers: dict[int, tuple[int, str | None, str]] = {}

    def fetch(slot: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.get(slot_url(services, anna, slot, SEND))
        decode_image(response.data)
        answers[slot] = (response.status_code, response.mimetype, response.headers["ETag"])

    threads = [threading.Thread(target=fetch, args=(slot,)) for slot in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(status == 200 and mime == "image/png" for status, mime, _ in answers.values())
    assert len({etag for _, _, etag in answers.values()}) == 6
    shown = opened_items(redis_client)
    # beach 0.9 > city 0.6 > culture 0.5 > food 0.4 > wellness 0.3 > ski 0.1, one per category
    assert [shown[f"slot-{i}"] for i in range(1, 7)] == [
        "crete",
        "amsterdam",
        "rome",
        "lyon",
        "spa",
        "zermatt",
    ]
    assert len(redis_client.hgetall(keys.rankings(anna))) == 1

    client = app.test_client()
    for slot in range(1, 7):
        response = client.get(click_url(services, anna, slot, SEND))
        assert response.status_code == 302
        assert landing(response) == f"https://shop.example/items/{shown[f'slot-{slot}']}"
    assert opened_items(redis_client, "click") == shown


def test_scores_updated_between_send_and_open_change_what_is_shown(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=1)
    services.recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": anna,
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": affinities(ski=0.99),
                }
            )
        ]
    )
    client.get(slot_url(services, anna, 1, SEND))
    assert opened_items(redis_client)["slot-1"] == "zermatt"


def test_the_ranking_holds_for_the_send_and_a_new_send_ranks_again(
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    clock: FakeClock,
    anna: str,
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    client.get(slot_url(services, anna, 1, SEND))
    services.recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": anna,
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": affinities(ski=0.99),
                }
            )
        ]
    )
    client.get(slot_url(services, anna, 2, SEND))
    assert opened_items(redis_client) == {"slot-1": "crete", "slot-2": "amsterdam"}

    clock.advance(days=1)
    client.get(slot_url(services, anna, 1, "2026-11-24"))
    assert opened_items(redis_client)["slot-1"] == "zermatt"


def test_targeted_items_reach_only_their_audience(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_newsletter(services, ITEMS, slots=9, ranking={"max_per_category": 0})
    store_recipient(services, "vince", {"consent_email": True}, segments=["vip"])
    store_recipient(services, "nora", {"consent_email": True})
    for rid in ("vince", "nora"):
        for slot in range(1, 10):
            client.get(slot_url(services, rid, slot, SEND))
    rankings = {
        rid: redis_client.hget(keys.rankings(rid), f"daily/{SEND}") for rid in ("vince", "nora")
    }
    assert "vip-lounge" in str(rankings["vince"])
    assert "vip-lounge" not in str(rankings["nora"])


def test_without_consent_the_slots_are_generic(
    client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_newsletter(services, ITEMS, slots=3)
    store_recipient(
        services,
        "otto",
        {"first_name": "Otto", "consent_personalisation": False},
        affinities(ski=1.0),
        segments=["vip"],
    )
    personal = slot_url(services, "otto", 1, SEND)
    first = client.get(personal)
    assert first.headers["Cache-Control"] == "no-cache, max-age=0"  # nothing personal in it
    shown = [opened_items(redis_client)["slot-1"]]
    for slot in (2, 3):
        client.get(slot_url(services, "otto", slot, SEND))
        shown.append(opened_items(redis_client)[f"slot-{slot}"])
    # by priority alone: the top-priority items, one per category; never the targeted one
    assert len(set(shown)) == 3
    assert set(shown) <= {"amsterdam", "crete", "zermatt", "rome", "lyon", "spa"}
    ranking = redis_client.hget(keys.rankings("otto"), f"daily/{SEND}")
    assert ranking is not None
    assert '"generic": true' in ranking


def test_a_slot_with_no_item_left_shows_its_fallback(
    client: FlaskClient, services: Services, anna: str
) -> None:
    store_newsletter(services, [item("only", "beach")], slots=2)
    image = client.get(slot_url(services, anna, 2, SEND))
    assert image.status_code == 200
    assert image.headers["X-Blanco-Fallback"] == "no item left"
    assert landing(client.get(click_url(services, anna, 2, SEND))) == FALLBACK_URL
    assert landing(client.get(click_url(services, anna, 1, SEND))).endswith("/items/only")


def test_an_item_that_expired_after_the_ranking_shows_the_fallback_but_clicks_follow_it(
    client: FlaskClient, services: Services, clock: FakeClock, anna: str, redis_client: redis.Redis
) -> None:
    ends = clock.now.replace(hour=12).isoformat()
    store_newsletter(services, [item("flash", "beach", valid_until=ends)], slots=1)
    assert "X-Blanco-Fallback" not in client.get(slot_url(services, anna, 1, SEND)).headers
    clock.advance(hours=3)
    assert client.get(slot_url(services, anna, 1, SEND)).headers["X-Blanco-Fallback"] == (
        "item unavailable"
    )
    # the email showed the item when it was opened: a click days later still goes there
    assert landing(client.get(click_url(services, anna, 1, SEND))).endswith("/items/flash")
    events = [f for _, f in campaign_event_entries(redis_client, "daily")]
    shown = [(f["type"], f["variant"]) for f in events]
    assert shown == [("open", "flash"), ("open", "_fallback"), ("click", "flash")]  # the item's


def test_a_bot_click_does_not_fix_the_ranking(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=1)
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"}
    response = client.head(click_url(services, anna, 1, SEND), headers=scanner)
    assert response.status_code == 302
    assert not redis_client.exists(keys.rankings(anna))
    kinds = [f["kind"] for _, f in campaign_event_entries(redis_client, "daily")]
    assert kinds == ["bot"]


@pytest.mark.parametrize(
    "path",
    [
        "/s/nope/1.png?r=x",
        "/s/daily/9.png?r=x",
        "/s/daily/0.png",
        "/s/daily/1.png?r=tampered.sig&s=not-a-date",
    ],
)
def test_unknown_or_bad_slot_urls_still_answer_an_image(
    client: FlaskClient, services: Services, path: str
) -> None:
    store_newsletter(services, ITEMS, slots=2)
    response = client.get(path)
    assert response.status_code == 200
    decode_image(response.data)


def test_a_paused_campaign_shows_every_slot_fallback(
    client: FlaskClient, services: Services, anna: str
) -> None:
    from models.campaigns.specs import CampaignSpec

    store_newsletter(services, ITEMS, slots=1)
    services.campaigns.update_campaign(CampaignSpec(id="daily", status="paused"))
    assert client.get(slot_url(services, anna, 1, SEND)).headers["X-Blanco-Fallback"] == (
        "campaign paused"
    )
    assert landing(client.get(click_url(services, anna, 1, SEND))) == FALLBACK_URL


def test_open_events_carry_the_send(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    newsletter = store_newsletter(services, ITEMS, slots=1)
    from models.newsletter.sends import plan_send

    services.sends.start(plan_send(newsletter, None, services.clock()))
    client.get(slot_url(services, anna, 1, SEND))
    client.get(slot_url(services, anna, 1, "2026-11-20"))  # a send that was never recorded
    sends = [f["send"] for _, f in campaign_event_entries(redis_client, "daily")]
    assert sends == [SEND, ""]


def test_reports_per_send_count_that_sends_opens_and_clicks(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    clock: FakeClock,
    anna: str,
) -> None:
    from models.newsletter.sends import plan_send

    newsletter = store_newsletter(services, ITEMS, slots=2)
    for day in (23, 24):
        services.sends.start(plan_send(newsletter, clock.now.date().replace(day=day), clock.now))
    client.get(slot_url(services, anna, 1, SEND))
    client.get(slot_url(services, anna, 2, SEND))
    client.get(click_url(services, anna, 1, SEND))
    client.get(slot_url(services, anna, 1, "2026-11-24"))

    def report(send: str) -> dict[str, dict[str, int]]:
        response = client.get(f"/api/v1/campaigns/daily/report?send={send}", headers=admin_headers)
        assert response.status_code == 200
        document = response.get_json()
        assert document["send"] == send
        assert {row["day"] for row in document["rows"]} == {send}
        return {row["block"]: row for row in document["totals"]}

    first = report(SEND)
    assert (first["slot-1"]["opens"], first["slot-1"]["clicks"]) == (1, 1)
    assert (first["slot-2"]["opens"], first["slot-2"]["clicks"]) == (1, 0)
    second = report("2026-11-24")
    assert set(second) == {"slot-1"}
    assert (second["slot-1"]["openers"], second["slot-1"]["recipients"]) == (1, 1)
    assert (first["slot-1"]["clickers"], first["slot-1"]["click_to_open_rate"]) == (1, 1.0)
    bad = client.get("/api/v1/campaigns/daily/report?send=nope", headers=admin_headers)
    assert bad.status_code == 422


def test_block_opens_count_only_toward_recorded_sends(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock, anna: str
) -> None:
    from models.newsletter.sends import plan_send
    from tests.factories import store_block, variant

    newsletter = store_newsletter(services, ITEMS, slots=1)
    store_block(services, [variant("v")])
    services.sends.start(plan_send(newsletter, None, clock.now))
    token = services.signer.sign(anna)
    for send in (SEND, "2031-01-01", "not-a-date"):
        assert client.get(f"/i/daily/hero.png?r={token}&s={send}").status_code == 200
    sends = [f["send"] for _, f in campaign_event_entries(redis_client, "daily")]
    assert sends == [SEND, "", ""]


def test_rankings_are_kept_for_the_last_32_sends_with_the_decision_ttl(
    client: FlaskClient, services: Services, redis_client: redis.Redis, anna: str
) -> None:
    store_newsletter(services, ITEMS, slots=1)
    first = dt.date(2026, 10, 1)
    sends = [(first + dt.timedelta(days=n)).isoformat() for n in range(40)]
    for send in sends:
        assert client.get(slot_url(services, anna, 1, send)).status_code == 200
        assert redis_client.hlen(keys.rankings(anna)) <= 32
    kept = redis_client.hkeys(keys.rankings(anna))
    assert sorted(field.rpartition("/")[2] for field in kept) == sends[-32:]
    ttl = redis_client.ttl(keys.rankings(anna))
    assert 0 < ttl <= services.settings.decision_ttl_seconds


def test_a_layout_shows_each_item_picture_through_one_params_object(app: Flask) -> None:
    slots: SlotServer = app.extensions[SLOTS]
    layout = CardParams(image_asset=None)

    first = slots._with_picture(layout, "asset-1")
    again = slots._with_picture(layout, "asset-1")
    other = slots._with_picture(layout, "asset-2")

    assert first is again  # the render keys and the renderer's memos go by params object
    assert isinstance(first, CardParams)
    assert isinstance(other, CardParams)
    assert (first.image_asset, other.image_asset) == ("asset-1", "asset-2")
    assert layout.image_asset is None
