"""A recipient's arm stays put (docs/measurement.md, "Experiments"): re-opens and weight
changes do not move them, a machine's prefetch never replaces what a person's open decided, and
a click right after an open follows that open, whatever the background writer still holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from models.decision import Decision, decision_field
from models.storage import keys
from server.services import Services
from tests.factories import FALLBACK_URL, landing, store_block, store_recipient, variant

IOS_MAIL = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
}
APPLE_MPP = {"User-Agent": "Mozilla/5.0"}
BROWSER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
}
RECIPIENTS = [f"r{n}" for n in range(40)]


def stored_decision(services: Services, recipient_id: str) -> Decision | None:
    document = services.redis.hget(keys.decisions(recipient_id), decision_field("daily", "hero"))
    return Decision.from_json("daily", "hero", document) if document else None


def open_hero(client: FlaskClient, services: Services, rid: str, headers: dict[str, str]) -> Any:
    response = client.get(
        "/i/daily/hero.png", query_string={"r": services.signer.sign(rid)}, headers=headers
    )
    assert response.status_code == 200
    return response


def click_hero(client: FlaskClient, services: Services, rid: str) -> str:
    response = client.get(
        "/c/daily/hero", query_string={"r": services.signer.sign(rid)}, headers=BROWSER
    )
    assert response.status_code == 302
    location: str = landing(response)
    return location


def test_re_opens_keep_the_arm_when_the_weights_change(
    client: FlaskClient, services: Services
) -> None:
    store_block(services, [variant("a"), variant("b")])
    for rid in RECIPIENTS:
        store_recipient(services, rid)
        open_hero(client, services, rid, IOS_MAIL)
    first = {rid: stored_decision(services, rid) for rid in RECIPIENTS}
    arms = {rid: decision.variant_id for rid, decision in first.items() if decision}
    assert set(arms.values()) == {"a", "b"}
    store_block(services, [variant("a", weight=1), variant("b", weight=1000)])
    for rid in RECIPIENTS:
        open_hero(client, services, rid, IOS_MAIL)
        assert click_hero(client, services, rid) == f"https://shop.example/{arms[rid]}"
    newcomers = [f"new{n}" for n in range(20)]
    for rid in newcomers:
        store_recipient(services, rid)
        open_hero(client, services, rid, IOS_MAIL)
    assert {stored_decision(services, rid).variant_id for rid in newcomers} == {"b"}  # type: ignore[union-attr]


def test_a_machine_prefetch_never_replaces_a_persons_decision(
    client: FlaskClient, services: Services
) -> None:
    store_block(
        services,
        [
            variant("for-people", {"client": ["apple_mail_ios"]}, priority=1),
            variant("for-everyone"),
        ],
    )
    store_recipient(services, "anna")
    open_hero(client, services, "anna", IOS_MAIL)
    person = stored_decision(services, "anna")
    assert person is not None
    assert (person.variant_id, person.human) == ("for-people", True)
    prefetch = open_hero(client, services, "anna", APPLE_MPP)  # shown its own decision
    assert prefetch.headers.get("X-Blanco-Fallback") is None
    assert stored_decision(services, "anna") == person
    probe = client.head("/i/daily/hero.png", query_string={"r": services.signer.sign("anna")})
    assert probe.status_code == 200
    assert stored_decision(services, "anna") == person
    assert click_hero(client, services, "anna") == "https://shop.example/for-people"

    store_recipient(services, "bram")  # a prefetch first: a person's open replaces it
    open_hero(client, services, "bram", APPLE_MPP)
    machine = stored_decision(services, "bram")
    assert machine is not None
    assert (machine.variant_id, machine.human) == ("for-everyone", False)
    open_hero(client, services, "bram", IOS_MAIL)
    assert stored_decision(services, "bram").variant_id == "for-people"  # type: ignore[union-attr]


def test_a_click_right_after_the_open_follows_it_with_recording_in_the_background(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(record_in_background=True)
    services: Services = app.extensions["blanco"]
    client = app.test_client()
    store_block(
        services,
        [
            variant("on-the-phone", {"client": ["apple_mail_ios"]}, priority=1),
            variant("elsewhere"),
        ],
    )
    for rid in RECIPIENTS[:10]:
        store_recipient(services, rid)
        open_hero(client, services, rid, IOS_MAIL)  # its record still waits for the writer
        assert click_hero(client, services, rid) == "https://shop.example/on-the-phone"
    assert app.extensions["blanco.open"].recorder.flush(timeout=5)


def test_a_click_right_after_an_open_whose_render_failed_follows_the_fallback(
    make_app: Callable[..., Flask],
) -> None:
    """The variant's decision goes out before the render; the fallback's replaces it before the
    answer, so the click goes where the image the person saw points."""
    app = make_app(record_in_background=True)
    services: Services = app.extensions["blanco"]
    client = app.test_client()
    store_block(services, [variant("boom", text="{{ 1 / 0 }}", background="#CC0000")])
    for rid in RECIPIENTS[:5]:
        store_recipient(services, rid)
        shown = open_hero(client, services, rid, IOS_MAIL)
        assert shown.headers["X-Blanco-Fallback"] == "render error"
        stored = stored_decision(services, rid)  # before the writer has run
        assert stored is not None
        assert (stored.variant_id, stored.reason) == (None, "render error")
        assert click_hero(client, services, rid) == FALLBACK_URL
    assert app.extensions["blanco.open"].recorder.flush(timeout=5)
