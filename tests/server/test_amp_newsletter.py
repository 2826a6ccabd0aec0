"""The AMP newsletter the admin fetches: merged as each ESP merges it, it passes our AMP rules,
its amp-list reads the recipient's items, and its text/html part is every slot's image+link."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.admin_api.amp import GUARDS
from server.amp_rules import check_amp_email
from server.embed_codes import DIALECTS
from server.services import Services
from tests.esp_merges import MERGE_CASES, MERGE_IDS, Merge, elements
from tests.factories import (
    AdminApi,
    decode_image,
    error_pointers,
    landing,
    problem,
    store_recipient,
)
from tests.newsletter_fixtures import item, store_newsletter

SEND = "2026-11-23"
PUBLIC = "https://blanco.test"
SENDER = {"AMP-Email-Sender": "news@shop.example"}
ITEMS = [
    item("crete", "beach", price=459),
    item("amsterdam", "city_trip"),
    item("rome", "culture"),
]
MUSTACHE = ("{{url}}", "{{#image}}", '<amp-img src="{{image}}"', "{{title}}", "{{/cta}}")


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app on an https public URL, with one allowed AMP sender."""
    return make_app(public_url=PUBLIC, amp_allowed_senders="news@shop.example")


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def anna(services: Services) -> str:
    store_recipient(
        services,
        "anna",
        {"first_name": "Anna", "consent_email": True},
        {"affinity:beach": 0.9, "affinity:city_trip": 0.6, "affinity:culture": 0.5},
    )
    store_newsletter(services, ITEMS, slots=3)
    return "anna"


def amp_answer(api: AdminApi, esp: str, **query: str) -> dict[str, Any]:
    """The admin API's answer for ``esp``."""
    response = api.get("/campaigns/daily/newsletter/amp", query_string={"esp": esp, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def local(url: str) -> str:
    """The path and query of an absolute Blanco URL."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, url
    return f"{parts.path}?{parts.query}"


def test_the_answer_has_both_parts_for_every_esp(api: AdminApi, anna: str) -> None:
    for esp in DIALECTS:
        body = amp_answer(api, esp)
        assert set(body) == {"esp", "amp", "html", "items_url", "fields", "parts"}
        assert body["esp"] == esp
        assert body["fields"] == {"r": "bl_token", "s": "bl_send"}
        assert body["parts"] == ["text/plain", "text/x-amp-html", "text/html"]
        assert "<html ⚡4email data-css-strict>" in body["amp"]
        assert body["items_url"].startswith(f"{PUBLIC}/amp/daily/items.json?r=")
        assert body["html"].count("<img ") == 3


def test_every_dialect_has_a_mustache_guard() -> None:
    assert set(GUARDS) == set(DIALECTS)


def test_dialects_without_braces_pass_the_rules_unmerged(api: AdminApi, anna: str) -> None:
    for esp in ("mailchimp", "salesforce"):
        violations = check_amp_email(amp_answer(api, esp)["amp"])
        assert violations == [], [str(v) for v in violations]


@pytest.mark.parametrize(("esp", "merge"), MERGE_CASES, ids=MERGE_IDS)
def test_merged_by_the_esp_the_amp_part_is_valid_and_reads_the_recipients_items(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    anna: str,
    esp: str,
    merge: Merge,
) -> None:
    body = amp_answer(api, esp)
    token = services.signer.sign(anna)
    merged = merge(body["amp"], {"bl_token": token, "bl_send": SEND})

    violations = check_amp_email(merged)
    assert violations == [], [str(v) for v in violations]
    for piece in MUSTACHE:  # the ESP left the amp-mustache template alone
        assert piece in merged, piece
    assert "{% raw %}" not in merged
    assert "{% endraw %}" not in merged

    tags = elements(merged)
    (amp_list,) = [attrs for tag, attrs in tags if tag == "amp-list"]
    assert local(str(amp_list["src"])) == f"/amp/daily/items.json?r={token}&s={SEND}"
    response = client.get(local(str(amp_list["src"])), headers=SENDER)
    assert response.status_code == 200
    titles = [i["title"] for i in response.get_json()["items"]]
    assert titles == ["Trip crete", "Trip amsterdam", "Trip rome"]

    # an empty list (the template's {{^items}}) and a failed fetch (the fallback) both show the
    # slots as images, paired with their clicks
    assert "{{/items}}{{^items}}" in merged
    links = [str(a["href"]) for tag, a in tags if tag == "a" and "{{" not in str(a.get("href"))]
    images = [str(a["src"]) for tag, a in tags if tag == "amp-img" and "{{" not in str(a["src"])]
    assert len(links) == len(images) == 6
    for index, (link, image) in enumerate(zip(links, images, strict=True)):
        number = index % 3 + 1
        assert local(image) == f"/s/daily/{number}.png?r={token}&s={SEND}&dpr=2"
        assert local(link) == f"/s/daily/{number}?r={token}&s={SEND}"


@pytest.mark.parametrize(("esp", "merge"), MERGE_CASES, ids=MERGE_IDS)
def test_the_html_part_is_every_slot_as_an_image_and_its_link(
    api: AdminApi,
    client: FlaskClient,
    services: Services,
    anna: str,
    esp: str,
    merge: Merge,
) -> None:
    body = amp_answer(api, esp)
    token = services.signer.sign(anna)
    merged = merge(body["html"], {"bl_token": token, "bl_send": SEND})
    tags = elements(merged)
    links = [str(a["href"]) for tag, a in tags if tag == "a"]
    images = [a for tag, a in tags if tag == "img"]
    assert len(links) == len(images) == 3
    expected = ["crete", "amsterdam", "rome"]
    for number, (link, image) in enumerate(zip(links, images, strict=True), start=1):
        assert (image["width"], image["height"], image["alt"]) == ("300", "100", "Your trip")
        fetched = client.get(local(str(image["src"])))
        assert fetched.status_code == 200
        decode_image(fetched.data)
        click = client.get(local(link))
        assert landing(click) == f"https://shop.example/items/{expected[number - 1]}"


def test_the_email_is_multipart_alternative_with_the_html_fallback_last(
    api: AdminApi, anna: str
) -> None:
    body = amp_answer(api, "mailchimp")
    message = EmailMessage()
    message["Subject"] = "Today's picks"
    message.set_content("Today's picks: open this email in a client that shows images.")
    parts = {"text/x-amp-html": body["amp"], "text/html": body["html"]}
    for media_type in body["parts"][1:]:
        message.add_alternative(parts[media_type], subtype=media_type.split("/")[1])
    assert message.get_content_type() == "multipart/alternative"
    found = [part.get_content_type() for part in message.iter_parts()]
    assert found == ["text/plain", "text/x-amp-html", "text/html"]
    html_part = list(message.iter_parts())[-1].get_content()
    assert html_part.count('<a href="https://blanco.test/s/daily/') == 3
    assert "*|BL_TOKEN|*" in html_part
    assert "*|BL_SEND|*" in html_part


def test_custom_esp_fields_name_both_merge_tags(api: AdminApi, anna: str) -> None:
    body = amp_answer(api, "mailchimp", token_field="tok", send_field="sendday")
    assert body["fields"] == {"r": "tok", "s": "sendday"}
    assert body["items_url"].endswith("?r=*|TOK|*&s=*|SENDDAY|*")
    assert "*|BL_TOKEN|*" not in body["amp"] + body["html"]


def test_the_document_uses_the_public_url_as_it_is(
    make_app: Callable[..., Flask], admin_headers: dict[str, str], services: Services
) -> None:
    plain = make_app()  # http://blanco.test: real AMP needs https
    store_newsletter(services, ITEMS, slots=1)
    api = AdminApi(plain.test_client(), admin_headers)
    body = amp_answer(api, "mailchimp")
    assert body["items_url"].startswith("http://blanco.test/amp/")
    rules = [v.rule for v in check_amp_email(body["amp"])]
    assert rules == ["amp-list"]


def test_refusals(api: AdminApi, services: Services) -> None:
    problem(api.get("/campaigns/daily/newsletter/amp"), 404)
    store_newsletter(services, ITEMS, slots=1)
    response = api.get("/campaigns/daily/newsletter/amp", query_string={"esp": "aweber"})
    assert error_pointers(response) == [("/esp", "esp")]
    response = api.get(
        "/campaigns/daily/newsletter/amp", query_string={"send_field": "not a field"}
    )
    assert error_pointers(response) == [("/send_field", "send_field")]
    response = api.get("/campaigns/daily/newsletter/amp", query_string={"token_field": "1x"})
    assert error_pointers(response) == [("/token_field", "token_field")]
