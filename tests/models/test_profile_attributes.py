"""Known profile attributes are typed: a wrong value is refused with a pointer to it, and
custom attributes stay free."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from models.recipients.profile_attributes import KNOWN_ATTRIBUTES
from models.recipients.upserts import ProfileUpsert


def upsert(**attributes: Any) -> ProfileUpsert:
    return ProfileUpsert.model_validate({"recipient_id": "anna", "attributes": attributes})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email", "anna@example.com"),
        ("salutation_confirmed", True),
        ("gender", "non_binary"),
        ("language", "nl-NL"),
        ("time_zone", "Europe/Amsterdam"),
        ("country", "NL"),
        ("consent_email", False),
        ("persona", "city_tripper"),
        ("first_name", "Ánna"),
        ("loyalty_points", 1200),  # custom attributes are free
        ("favourite_colour", "blue"),
    ],
)
def test_good_values_pass(name: str, value: Any) -> None:
    assert upsert(**{name: value}).attributes[name] == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email", "not an address"),
        ("salutation_confirmed", "yes"),
        ("gender", "f"),
        ("language", "Dutch"),
        ("time_zone", "Mars/Olympus"),
        ("country", "nl"),
        ("consent_email", 1),
        ("consent_personalisation", "false"),
        ("persona", "City Tripper"),
        ("first_name", ""),
    ],
)
def test_wrong_values_are_refused_at_their_attribute(name: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        upsert(**{name: value}, first_name_ok="x")
    assert [e["loc"] for e in refused.value.errors()] == [("attributes", name)]


def test_null_removes_a_known_attribute_too() -> None:
    assert upsert(time_zone=None).attributes == {"time_zone": None}


def test_every_known_attribute_is_described() -> None:
    assert all(a.description and a.kind for a in KNOWN_ATTRIBUTES.values())


def test_the_api_points_at_the_wrong_attribute_and_stores_nothing(
    client: Any, ingest_headers: dict[str, str], redis_client: Any
) -> None:
    from tests.factories import AdminApi, error_pointers

    api = AdminApi(client, ingest_headers)
    response = api.put(
        "/recipients/anna/profile",
        json={"attributes": {"first_name": "Anna", "time_zone": "Mars/Olympus"}},
    )
    assert error_pointers(response) == [("/attributes/time_zone", "attributes.time_zone")]
    assert not redis_client.keys("blanco:rcp:*")
    bulk = api.post(
        "/profiles/bulk",
        data=b'{"recipient_id": "bram", "attributes": {"country": "nl"}}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert bulk.get_json()["errors"][0]["pointer"] == "/attributes/country"


def test_the_docs_document_every_known_attribute() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "recipient-data.md"
    text = page.read_text(encoding="utf-8")
    for attribute in KNOWN_ATTRIBUTES.values():
        assert f"| `{attribute.name}` | {attribute.kind} |" in text
