"""Edge cases found in review: odd query values never fail an open-time route, a withdrawn
consent stops profile use even for a send already ranked, and an erased recipient's AMP and
web-view fetches record nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.measurement.event_stream import campaign_event_entries
from models.recipients.upserts import ProfileUpsert
from server.services import EXTENSION, Services
from tests.factories import AdminApi, error_pointers, store_block, store_recipient, variant
from tests.newsletter_fixtures import item, slot_url, store_newsletter

SEND = "2026-11-23"


@pytest.mark.parametrize("dpr", ["%C2%B2", "999999", "-1", "x", ""])
def test_odd_dpr_values_still_answer_an_image(
    client: FlaskClient, services: Services, dpr: str
) -> None:
    store_block(services, [variant("v")])
    store_newsletter(services, [item("a")], slots=1)
    for path in ("/i/daily/hero.png", "/s/daily/1.png"):
        response = client.get(f"{path}?dpr={dpr}")
        assert response.status_code == 200
        assert response.mimetype == "image/png"


def test_withdrawn_consent_stops_profile_use_in_an_already_ranked_send(
    client: FlaskClient, services: Services
) -> None:
    store_newsletter(services, [item("a", "x"), item("b", "y")], slots=2)
    store_recipient(services, "anna", {"first_name": "Anna", "consent_email": True})
    first = client.get(slot_url(services, "anna", 1, SEND))
    services.recipients.upsert_profiles(
        [ProfileUpsert(recipient_id="anna", attributes={"consent_personalisation": False})]
    )
    again = client.get(slot_url(services, "anna", 1, SEND))
    generic = client.get(f"/s/daily/1.png?s={SEND}")
    assert again.headers["ETag"] != first.headers["ETag"]  # "for Anna" is no longer drawn
    assert generic.status_code == 200
    page = client.get(f"/v/daily?r={services.signer.sign('anna')}&s={SEND}")
    assert "Anna" not in page.get_data(as_text=True)


def test_an_erased_recipient_records_nothing_through_amp_or_the_web_view(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(amp_allowed_senders="news@example.com")
    services: Services = app.extensions[EXTENSION]
    client = app.test_client()
    store_newsletter(services, [item("a")], slots=1)
    store_recipient(services, "erin", {"consent_email": True})
    token = services.signer.sign("erin")
    _, key = services.api_keys.create("tests", ["admin"])
    api = AdminApi(client, {"Authorization": f"Bearer {key}"})
    assert api.delete("/recipients/erin").status_code == 204
    assert client.get(f"/v/daily?r={token}&s={SEND}").status_code == 200
    amp = client.get(
        f"/amp/daily/items.json?r={token}&s={SEND}",
        headers={"AMP-Email-Sender": "news@example.com"},
    )
    assert amp.status_code == 200
    assert amp.get_json()["items"]  # the generic items
    assert "erin" not in amp.get_data(as_text=True)
    assert not campaign_event_entries(redis_client, "daily")
    assert not [k for k in redis_client.keys("*") if "erin" in k]


def test_a_time_zone_that_names_a_folder_is_a_clear_error(
    client: FlaskClient, ingest_headers: dict[str, str]
) -> None:
    api = AdminApi(client, ingest_headers)
    for zone in ("America", "x" * 300):
        response = api.put("/recipients/anna/profile", json={"attributes": {"time_zone": zone}})
        assert error_pointers(response) == [("/attributes/time_zone", "attributes.time_zone")]
