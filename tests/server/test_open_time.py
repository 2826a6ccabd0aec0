"""The open-time routes end to end: decide, render, record; clicks follow what was shown."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.storage import keys
from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    FakeClock,
    corner_color,
    decode_image,
    hex_rgb,
    landing,
    store_block,
    store_recipient,
    variant,
)

HOT = variant("hot", {"score": "travel_propensity", "gte": 0.7}, priority=20, background="#CC0000")
LAPSED = variant("lapsed", {"attr": "lifecycle", "eq": "lapsed"}, priority=10, background="#00AA00")


def image(client: FlaskClient, services: Services, recipient_id: str | None, **query: str) -> Any:
    token = services.signer.sign(recipient_id) if recipient_id else None
    params = {"r": token, **query} if token else query
    return client.get("/i/daily/hero.png", query_string=params)


def click(client: FlaskClient, services: Services, recipient_id: str | None) -> Any:
    params = {"r": services.signer.sign(recipient_id)} if recipient_id else {}
    return client.get("/c/daily/hero", query_string=params)


@pytest.fixture
def targeted(services: Services) -> Services:
    store_block(services, [HOT, LAPSED])
    store_recipient(
        services, "anna", {"first_name": "Anna", "lifecycle": "active"}, {"travel_propensity": 0.9}
    )
    store_recipient(
        services,
        "chloe",
        {"first_name": "Chloé", "lifecycle": "lapsed"},
        {"travel_propensity": 0.2},
    )
    store_recipient(
        services, "eva", {"first_name": "Eva", "lifecycle": "active"}, {"travel_propensity": 0.1}
    )
    return services


def test_recipients_see_variants_by_score_and_attribute(
    client: FlaskClient, targeted: Services
) -> None:
    anna = image(client, targeted, "anna")
    chloe = image(client, targeted, "chloe")
    eva = image(client, targeted, "eva")
    for response in (anna, chloe, eva):
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert decode_image(response.data).size == (300, 100)
    assert corner_color(anna.data) == hex_rgb("#CC0000")
    assert corner_color(chloe.data) == hex_rgb("#00AA00")
    assert corner_color(eva.data) == hex_rgb(FALLBACK_BACKGROUND)


def test_personalised_image_headers(client: FlaskClient, targeted: Services) -> None:
    response = image(client, targeted, "anna")
    assert response.headers["Cache-Control"] == "no-cache, no-store, max-age=0, private"
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["ETag"].startswith('"')


def test_placeholders_are_filled_from_the_profile(client: FlaskClient, targeted: Services) -> None:
    anna = image(client, targeted, "anna").data
    store_recipient(
        targeted, "bob", {"first_name": "Bob", "lifecycle": "active"}, {"travel_propensity": 0.95}
    )
    bob = image(client, targeted, "bob").data
    assert corner_color(anna) == corner_color(bob)
    assert anna != bob  # same variant, different name drawn


@pytest.mark.parametrize(
    "token",
    [
        None,
        "anna",  # no signature
        "anna.AAAAAAAAAAAAAAAAAAAAAA",  # wrong signature
        "chloe.{anna_signature}",  # another recipient's signature
        "../../etc.passwd",
    ],
)
def test_missing_or_tampered_tokens_get_the_generic_fallback(
    client: FlaskClient, targeted: Services, token: str | None
) -> None:
    anna_token = targeted.signer.sign("anna")
    if token and "{anna_signature}" in token:
        token = token.format(anna_signature=anna_token.rpartition(".")[2])
    response = client.get("/i/daily/hero.png", query_string={"r": token} if token else {})
    assert response.status_code == 200
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert response.headers["X-Blanco-Fallback"] == "no verified recipient"
    redirect = client.get("/c/daily/hero", query_string={"r": token} if token else {})
    assert redirect.status_code == 302
    assert landing(redirect) == FALLBACK_URL


def test_unknown_recipient_gets_the_fallback(client: FlaskClient, targeted: Services) -> None:
    response = image(client, targeted, "stranger")
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert response.headers["X-Blanco-Fallback"] == "unknown recipient"


def test_tokens_signed_with_a_retired_key_still_verify_during_rotation(
    make_app: Any, targeted: Services
) -> None:
    old_key = targeted.settings.signing_keys[0]
    token = targeted.signer.sign("anna")
    rotated = make_app(signing_keys=f"new-key-{'x' * 40},{old_key}")
    response = rotated.test_client().get("/i/daily/hero.png", query_string={"r": token})
    assert corner_color(response.data) == hex_rgb("#CC0000")
    dropped = make_app(signing_keys=f"new-key-{'x' * 40}")
    response = dropped.test_client().get("/i/daily/hero.png", query_string={"r": token})
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)


def test_click_after_open_goes_to_what_was_shown(client: FlaskClient, targeted: Services) -> None:
    image(client, targeted, "anna")
    assert landing(click(client, targeted, "anna")) == "https://shop.example/hot"
    image(client, targeted, "chloe")
    assert landing(click(client, targeted, "chloe")) == "https://shop.example/lapsed"


def test_click_follows_the_open_even_after_a_config_change(
    client: FlaskClient, targeted: Services
) -> None:
    image(client, targeted, "anna")
    store_block(targeted, [variant("hot", priority=5, target_url="https://shop.example/new-hot")])
    assert landing(click(client, targeted, "anna")) == "https://shop.example/hot"


def test_click_follows_the_open_after_the_data_changes(
    client: FlaskClient, targeted: Services
) -> None:
    image(client, targeted, "anna")
    store_recipient(targeted, "anna", {"lifecycle": "lapsed"}, {"travel_propensity": 0.1})
    assert landing(click(client, targeted, "anna")) == "https://shop.example/hot"


def test_click_without_an_open_decides_now(client: FlaskClient, targeted: Services) -> None:
    assert landing(click(client, targeted, "chloe")) == "https://shop.example/lapsed"
    stored = targeted.redis.hget(keys.decisions("chloe"), "daily/hero")
    assert stored is not None
    assert json.loads(stored)["v"] == "lapsed"


def test_click_never_redirects_outside_configuration(
    client: FlaskClient, targeted: Services
) -> None:
    token = targeted.signer.sign("anna")
    configured = {"https://shop.example/hot", "https://shop.example/lapsed", FALLBACK_URL}
    for query in (
        {"r": token, "url": "https://evil.example"},
        {"r": token, "redirect": "//evil.example", "next": "https://evil.example"},
        {"r": "x", "u": "https://evil.example"},
    ):
        response = client.get("/c/daily/hero", query_string=query)
        assert response.status_code == 302
        assert landing(response) in configured


def test_unknown_block_click_goes_to_the_neutral_page(client: FlaskClient, app: Flask) -> None:
    response = client.get("/c/nope/nothing")
    assert response.status_code == 302
    assert landing(response) == "http://blanco.test/gone"
    assert client.get("/gone").status_code == 200


def test_unknown_block_image_is_still_a_valid_image(client: FlaskClient) -> None:
    response = client.get("/i/nope/nothing.png")
    assert response.status_code == 200
    decode_image(response.data)


def test_decision_is_stored_with_version_and_ttl(client: FlaskClient, targeted: Services) -> None:
    image(client, targeted, "anna")
    key = keys.decisions("anna")
    stored = targeted.redis.hget(key, "daily/hero")
    assert stored is not None
    decision = json.loads(stored)
    assert (decision["v"], decision["ver"], decision["client"]) == ("hot", 1, "other")
    assert 0 < targeted.redis.ttl(key) <= targeted.settings.decision_ttl_seconds


def test_open_appends_an_event(client: FlaskClient, targeted: Services) -> None:
    image(client, targeted, "anna")
    click(client, targeted, "anna")
    events = campaign_event_entries(targeted.redis, "daily")
    assert [e[1]["type"] for e in events] == ["open", "click"]
    assert events[0][1]["variant"] == "hot"


def test_lock_on_first_open_keeps_content(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    store_block(services, [HOT, LAPSED], lock_on_first_open=True)
    store_recipient(services, "anna", {"lifecycle": "active"}, {"travel_propensity": 0.9})
    first = image(client, services, "anna").data
    store_recipient(services, "anna", {"lifecycle": "lapsed"}, {"travel_propensity": 0.1})
    clock.advance(hours=5)
    assert corner_color(image(client, services, "anna").data) == corner_color(first)
    assert landing(click(client, services, "anna")) == "https://shop.example/hot"


def test_without_lock_later_opens_redecide(client: FlaskClient, targeted: Services) -> None:
    image(client, targeted, "anna")
    store_recipient(targeted, "anna", {"lifecycle": "lapsed"}, {"travel_propensity": 0.1})
    assert corner_color(image(client, targeted, "anna").data) == hex_rgb("#00AA00")
    assert landing(click(client, targeted, "anna")) == "https://shop.example/lapsed"


def test_no_consent_gets_the_generic_fallback(client: FlaskClient, targeted: Services) -> None:
    store_recipient(targeted, "anna", {"consent_personalisation": False})
    response = image(client, targeted, "anna")
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert response.headers["X-Blanco-Fallback"] == "no consent"


def test_block_larger_than_the_configured_limit_is_refused(make_app: Any) -> None:
    from models.errors import InvalidInput

    services = make_app(max_image_pixels=10_000).extensions["blanco"]
    with pytest.raises(InvalidInput) as refused:
        store_block(services, [])  # 300 × 100 = 30,000 pixels
    assert refused.value.errors[0].field == "height"
    assert services.campaigns.get_block("daily", "hero") is None


def test_paused_campaign_shows_the_fallback(client: FlaskClient, targeted: Services) -> None:
    from models.campaigns.specs import CampaignSpec

    targeted.campaigns.update_campaign(CampaignSpec(id="daily", status="paused"))
    assert corner_color(image(client, targeted, "anna").data) == hex_rgb(FALLBACK_BACKGROUND)


def test_renderer_failure_serves_the_fallback(
    client: FlaskClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_block(services, [variant("boom", text="{{ 1 / 0 }}", background="#CC0000")])
    store_recipient(services, "anna")
    response = image(client, services, "anna")
    assert response.status_code == 200
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert response.headers["X-Blanco-Fallback"] == "render error"


def test_head_click_is_not_recorded(client: FlaskClient, targeted: Services) -> None:
    token = targeted.signer.sign("anna")
    response = client.head("/c/daily/hero", query_string={"r": token})
    assert response.status_code == 302
    assert targeted.redis.hget(keys.decisions("anna"), "daily/hero") is None


def test_an_event_pushed_by_api_changes_the_very_next_open(
    client: FlaskClient,
    services: Services,
    clock: FakeClock,
    ingest_headers: dict[str, str],
) -> None:
    survey = variant(
        "survey", {"event": "cs_contact", "within_days": 7}, priority=50, background="#AA00AA"
    )
    remarketing = variant(
        "remarketing",
        {
            "all": [
                {"event": "site_visit", "within_days": 3},
                {"not": {"event": "booking", "within_days": 3}},
            ]
        },
        priority=40,
        background="#0000AA",
    )
    store_block(services, [survey, remarketing])
    store_recipient(services, "anna")
    assert corner_color(image(client, services, "anna").data) == hex_rgb(FALLBACK_BACKGROUND)

    def push(event_type: str) -> None:
        response = client.post(
            "/api/v1/recipients/anna/events",
            json={"type": event_type, "at": clock.now.isoformat(), "channel": "web"},
            headers=ingest_headers,
        )
        assert response.status_code == 201, response.get_json()

    push("site_visit")
    assert corner_color(image(client, services, "anna").data) == hex_rgb("#0000AA")
    push("booking")
    assert corner_color(image(client, services, "anna").data) == hex_rgb(FALLBACK_BACKGROUND)
    push("cs_contact")
    assert corner_color(image(client, services, "anna").data) == hex_rgb("#AA00AA")
    clock.advance(days=8)  # the contact is no longer recent
    assert corner_color(image(client, services, "anna").data) == hex_rgb(FALLBACK_BACKGROUND)


def test_a_paused_campaigns_click_goes_where_the_open_showed(
    client: FlaskClient, targeted: Services
) -> None:
    from models.campaigns.specs import CampaignSpec

    image(client, targeted, "anna")  # before the pause: the hot variant
    targeted.campaigns.update_campaign(CampaignSpec(id="daily", status="paused"))
    assert landing(click(client, targeted, "anna")) == "https://shop.example/hot"
    paused = image(client, targeted, "chloe")  # during the pause: the fallback
    assert corner_color(paused.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert landing(click(client, targeted, "chloe")) == FALLBACK_URL
    never_opened = click(client, targeted, "eva")
    assert landing(never_opened) == FALLBACK_URL


def test_a_variant_whose_render_fails_sends_its_click_where_the_fallback_goes(
    client: FlaskClient, services: Services
) -> None:
    store_block(services, [variant("boom", text="{{ 1 / 0 }}", background="#CC0000")])
    store_recipient(services, "anna")
    shown = image(client, services, "anna")
    assert shown.headers["X-Blanco-Fallback"] == "render error"
    assert landing(click(client, services, "anna")) == FALLBACK_URL
    opens = [
        fields["variant"]
        for _, fields in campaign_event_entries(services.redis, "daily")
        if fields["type"] == "open"
    ]
    assert opens == ["_fallback"]  # counted as the fallback it showed


def test_filled_text_is_capped_at_blanco_max_text_length(make_app: Any) -> None:
    words = " ".join(f"w{n:03d}" for n in range(60))  # 299 characters

    def drawn(max_text_length: int, note: str) -> bytes:
        app = make_app(max_text_length=max_text_length)
        services: Services = app.extensions["blanco"]
        note_variant = variant("note", text="{{ note }}")
        note_variant["content"]["lines"][0]["min_font_size"] = 8  # shrink rather than cut
        store_block(services, [note_variant])
        store_recipient(services, "anna", {"note": note})
        response = image(app.test_client(), services, "anna")
        assert "X-Blanco-Fallback" not in response.headers
        return bytes(decode_image(response.data).tobytes())

    assert drawn(60, words) == drawn(1000, words[:60])
    assert drawn(60, words) != drawn(1000, words[:61])


def test_a_head_click_redirects_and_counts_as_a_bot_click_without_a_decision(
    client: FlaskClient, targeted: Services
) -> None:
    token = targeted.signer.sign("chloe")
    response = client.head("/c/daily/hero", query_string={"r": token})
    assert response.status_code == 302
    assert landing(response) == "https://shop.example/lapsed"
    assert targeted.redis.hget(keys.decisions("chloe"), "daily/hero") is None
    clicks = [
        fields
        for _, fields in campaign_event_entries(targeted.redis, "daily")
        if fields["type"] == "click"
    ]
    assert [(c["variant"], c["kind"]) for c in clicks] == [("lapsed", "bot")]


def test_a_deleted_blocks_old_clicks_still_go_where_the_open_showed(
    client: FlaskClient, targeted: Services
) -> None:
    image(client, targeted, "anna")  # the hot variant, stored with its version
    targeted.campaigns.delete_block("daily", "hero")
    assert landing(click(client, targeted, "anna")) == "https://shop.example/hot"
    gone = image(client, targeted, "anna")
    assert gone.status_code == 200
    assert decode_image(gone.data).size == (1, 1)  # no block: the last-resort image
    # a recipient who never opened it has nothing to follow: the neutral page
    assert landing(click(client, targeted, "eva")) == "http://blanco.test/gone"


def test_client_classes_read_more_headers_than_the_user_agent(
    client: FlaskClient, services: Services
) -> None:
    webview = (
        "Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36"
    )
    samsung = variant("samsung", {"client": ["samsung_mail"]}, background="#CC0000")
    store_block(services, [samsung])
    store_recipient(services, "anna")
    token = services.signer.sign("anna")
    same_agent = {"User-Agent": webview}
    by_app = {**same_agent, "X-Requested-With": "com.samsung.android.email.provider"}
    shown = client.get("/i/daily/hero.png", query_string={"r": token}, headers=by_app)
    assert corner_color(shown.data) == hex_rgb("#CC0000")
    other = client.get("/i/daily/hero.png", query_string={"r": token}, headers=same_agent)
    assert corner_color(other.data) == hex_rgb(FALLBACK_BACKGROUND)
    stored = services.redis.hget(keys.decisions("anna"), "daily/hero")
    assert stored is not None
    assert "com.samsung" not in stored  # the verdict is kept, not the request


def test_an_unnamed_agent_from_apples_ranges_is_apple_mpp(make_app: Any, tmp_path: Any) -> None:
    ranges = tmp_path / "egress-ip-ranges.csv"
    ranges.write_text("172.224.224.0/27,GB,GB-EN,London,\n", encoding="utf-8")
    app = make_app(apple_mpp_ranges_file=ranges)
    services: Services = app.extensions["blanco"]
    store_block(services, [variant("mpp", {"client": ["apple_mpp"]}, background="#CC0000")])
    store_recipient(services, "anna")
    client = app.test_client()
    query = {"r": services.signer.sign("anna")}
    headers = {"User-Agent": "SomeFetcher/1.0"}
    inside = client.get(
        "/i/daily/hero.png", query_string=query, headers=headers,
        environ_base={"REMOTE_ADDR": "172.224.224.5"},
    )  # fmt: skip
    assert corner_color(inside.data) == hex_rgb("#CC0000")
    outside = client.get(
        "/i/daily/hero.png", query_string=query, headers=headers,
        environ_base={"REMOTE_ADDR": "172.224.225.5"},
    )  # fmt: skip
    assert corner_color(outside.data) == hex_rgb(FALLBACK_BACKGROUND)
    stored = services.redis.hget(keys.decisions("anna"), "daily/hero")
    assert stored is not None
    assert "172.224" not in stored  # the address is never kept
