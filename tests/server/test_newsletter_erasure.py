"""Erasing a newsletter recipient: rankings, send memberships, holdout, suppression and recent
clicks go too, and their token no longer ranks or records anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from models.newsletter.sends import plan_send
from server.services import Services, audience_export
from tests.factories import AdminApi, raw_client, redis_contents, store_recipient
from tests.newsletter_fixtures import click_url, item, slot_url, store_newsletter

RID = "erin-7"
SEND = "2026-11-23"


@pytest.fixture
def everything(redis_url: str) -> Iterator[redis.Redis]:
    client = raw_client(redis_url, decode=True, encoding_errors="backslashreplace")
    yield client
    client.close()


def test_erase_leaves_no_newsletter_trace(
    client: FlaskClient,
    admin_headers: dict[str, str],
    services: Services,
    everything: redis.Redis,
) -> None:
    newsletter = store_newsletter(services, [item("a", "x"), item("b", "y")], slots=2)
    for rid in (RID, "other"):
        store_recipient(services, rid, {"first_name": "Erin", "consent_email": True})
    send = plan_send(newsletter, None, services.clock())
    assert len(list(audience_export(services).rows(newsletter, send, services.clock()))) == 2
    services.newsletters.suppress("daily", [RID])
    client.get(slot_url(services, RID, 1, SEND))
    client.get(click_url(services, RID, 2, SEND))
    assert RID in repr(redis_contents(everything))

    api = AdminApi(client, admin_headers)
    assert api.delete(f"/recipients/{RID}").status_code == 204

    assert RID not in repr(redis_contents(everything))
    assert not [key for key in everything.scan_iter(match="*") if RID in key]
    assert services.sends.was_sent_to("daily", SEND, "other")

    # the old token now gets the generic slot and leaves nothing behind
    response = client.get(slot_url(services, RID, 1, SEND))
    assert response.status_code == 200
    assert client.get(click_url(services, RID, 1, SEND)).status_code == 302
    assert RID not in repr(redis_contents(everything))
