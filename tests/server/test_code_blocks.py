"""A code block through the open route: a loyalty card's EAN-13 from the recipient's profile,
read back by ZBar at 1× and 2×; a profile value that cannot be encoded serves the fallback, and
a block whose fixed value cannot be encoded is refused by the admin API."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    AdminApi,
    block,
    corner_color,
    decode_image,
    hex_rgb,
    problem,
    store_block,
    store_recipient,
    variant,
)
from tests.scanner import scan

LOYALTY_CARD = {"type": "code", "symbology": "ean13", "value": "{{ loyalty_id }}"}


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def loyalty_block(services: Services, loyalty_id: Any) -> None:
    """A 300×120 block that shows anna (a member) her loyalty card's barcode."""
    card = variant("card", {"segment": "member"})
    card["content"] = LOYALTY_CARD
    store_block(services, [card], width=300, height=120)
    store_recipient(services, "anna", {"loyalty_id": loyalty_id}, segments=["member"])


@pytest.mark.parametrize("dpr", ["1", "2"])
def test_the_barcode_of_the_profile_field_scans(
    client: FlaskClient, services: Services, dpr: str
) -> None:
    loyalty_block(services, "400638133393")
    token = services.signer.sign("anna")
    response = client.get("/i/daily/hero.png", query_string={"r": token, "dpr": dpr})
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert "X-Blanco-Fallback" not in response.headers
    image = decode_image(response.data)
    assert image.size == (300 * int(dpr), 120 * int(dpr))
    assert scan(image, "ean13") == [("EAN13", "4006381333931")]


def test_a_profile_value_that_cannot_be_encoded_serves_the_fallback(
    client: FlaskClient, services: Services
) -> None:
    loyalty_block(services, "not-a-number")
    token = services.signer.sign("anna")
    response = client.get("/i/daily/hero.png", query_string={"r": token})
    assert response.status_code == 200
    assert response.headers["X-Blanco-Fallback"] == "content unavailable"
    assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)


def test_a_fixed_value_that_cannot_be_encoded_is_refused(api: AdminApi) -> None:
    assert api.post("/campaigns", json={"id": "daily", "name": "Daily"}).status_code == 201
    card = variant("card")
    card["content"] = {**LOYALTY_CARD, "value": "4006381333932"}
    response = api.post("/campaigns/daily/blocks", json=block(variants=[card]))
    [error] = problem(response, 422)["errors"]
    assert error["pointer"] == "/variants/0/content"
    assert "check digit of 400638133393 is 1, not 2" in error["detail"]
