"""The whole newsletter's embed code per ESP: blocks, then slots, then nothing else, each URL
with the token and send merge tags; merged like the ESP would, it works end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from server.services import Services
from tests.esp_merges import MERGE_CASES, MERGE_IDS, Merge, elements
from tests.factories import (
    AdminApi,
    decode_image,
    error_pointers,
    landing,
    store_block,
    store_recipient,
    variant,
)
from tests.newsletter_fixtures import item, store_newsletter

SEND = "2026-11-23"
PUBLIC = "http://blanco.test"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    return AdminApi(client, admin_headers)


@pytest.fixture
def newsletter(services: Services) -> None:
    store_block(services, [variant("hi", {"attr": "first_name", "exists": True})])
    store_newsletter(
        services, [item("a", "x"), item("b", "y")], slots=2, blocks=["hero"], name="Daily"
    )
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})


def embed(api: AdminApi, esp: str) -> dict[str, Any]:
    response = api.get("/campaigns/daily/newsletter/embed", query_string={"esp": esp})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.usefixtures("newsletter")
@pytest.mark.parametrize(("esp", "merge"), MERGE_CASES, ids=MERGE_IDS)
def test_the_merged_newsletter_works_end_to_end(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    redis_client: redis.Redis,
    esp: str,
    merge: Merge,
) -> None:
    answer = embed(api, esp)
    fields = {"bl_token": services.signer.sign("anna"), "bl_send": SEND}
    tags = elements(merge(answer["html"], fields))
    links = [str(a["href"]) for tag, a in tags if tag == "a"]
    images = [str(a["src"]) for tag, a in tags if tag == "img"]
    token = services.signer.sign("anna")
    assert links[0] == f"{PUBLIC}/v/daily?r={token}&s={SEND}"  # view in browser
    assert links[1:] == [
        f"{PUBLIC}/c/daily/hero?r={token}&s={SEND}",
        f"{PUBLIC}/s/daily/1?r={token}&s={SEND}",
        f"{PUBLIC}/s/daily/2?r={token}&s={SEND}",
    ]
    assert images == [
        f"{PUBLIC}/i/daily/hero.png?r={token}&s={SEND}&dpr=2",
        f"{PUBLIC}/s/daily/1.png?r={token}&s={SEND}&dpr=2",
        f"{PUBLIC}/s/daily/2.png?r={token}&s={SEND}&dpr=2",
    ]
    for image in images:
        response = client.get(image.removeprefix(PUBLIC))
        assert response.status_code == 200
        assert "X-Blanco-Fallback" not in response.headers
        assert decode_image(response.data).width in (600, 1200)
    assert client.get(links[0].removeprefix(PUBLIC)).status_code == 200
    shown = {
        f["block"]: f["variant"]
        for _, f in campaign_event_entries(redis_client, "daily")
        if f["type"] == "open"
    }
    assert landing(client.get(links[1].removeprefix(PUBLIC))) == "https://shop.example/hi"
    for number in (1, 2):
        target = landing(client.get(links[1 + number].removeprefix(PUBLIC)))
        assert target == f"https://shop.example/items/{shown[f'slot-{number}']}"
    assert answer["fields"] == {"r": "bl_token", "s": "bl_send"}
    assert [part["width"] for part in answer["parts"]] == [300, 300, 300]
    assert "<mj-image" in answer["mjml"]


def test_unknown_esp_and_missing_newsletter_are_clear_errors(
    api: AdminApi, services: Services
) -> None:
    assert api.get("/campaigns/daily/newsletter/embed").status_code == 404
    store_newsletter(services, [item("a")], slots=1)
    bad = api.get("/campaigns/daily/newsletter/embed", query_string={"esp": "aol"})
    assert error_pointers(bad) == [("/esp", "esp")]


@pytest.mark.usefixtures("newsletter")
def test_the_cli_prints_the_newsletter(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli.embed import run_newsletter_embed

    assert run_newsletter_embed(services, "daily", "mailchimp") == 0
    printed = capsys.readouterr()
    assert f"{PUBLIC}/s/daily/2?r=*|BL_TOKEN|*&amp;s=*|BL_SEND|*" in printed.out
    assert "merge tag *|BL_SEND|*" in printed.err
    assert run_newsletter_embed(services, "nope", "mailchimp") == 1


def test_a_part_without_alt_text_is_warned_about(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli.embed import run_newsletter_embed
    from server.embed_codes import EMPTY_ALT_WARNING, newsletter_embed

    store_block(services, [])  # no name and no fallback alt: the embed writes alt=""
    newsletter = store_newsletter(services, [item("a", "x")], slots=1, blocks=["hero"])
    block = services.campaigns.require_block("daily", "hero")
    embed = newsletter_embed(newsletter, [block], "hubspot", PUBLIC)
    assert embed.parts[0].warnings == (EMPTY_ALT_WARNING,)
    assert embed.parts[1].warnings == ()  # the slot's alt is "Your trip"
    assert embed.warnings == (f"/i/daily/hero.png: {EMPTY_ALT_WARNING}",)
    assert run_newsletter_embed(services, "daily", "hubspot", output="json") == 0
    printed = capsys.readouterr()
    assert f"warning: /i/daily/hero.png: {EMPTY_ALT_WARNING}" in printed.err
    assert json.loads(printed.out)["warnings"] == [f"/i/daily/hero.png: {EMPTY_ALT_WARNING}"]
