""" "Don't be creepy", end to end through the image and click routes: a greeting needs fresh,
confirmed data, and without consent no profile field reaches the image."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.upserts import ProfileUpsert
from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    FakeClock,
    corner_color,
    hex_rgb,
    landing,
    store_block,
    variant,
)

PERSONAL = "#0B7A75"
CONFIRMED_SALUTATION = {
    "all": [
        {"attr": "salutation", "exists": True},
        {"attr": "salutation_confirmed", "eq": True},
    ]
}
SEEN_LATELY = {"all": [{"attr": "first_name", "exists": True}, {"seen_within_days": 90}]}


def push_profile(
    services: Services,
    recipient_id: str,
    attributes: dict[str, Any],
    *,
    source: str = "crm",
    written: dt.datetime | None = None,
) -> None:
    """Store profile attributes as the data team pushes them."""
    document: dict[str, Any] = {
        "recipient_id": recipient_id,
        "attributes": attributes,
        "source": source,
    }
    if written is not None:
        document["updated_at"] = written.isoformat()
    services.recipients.upsert_profiles([ProfileUpsert.model_validate(document)])


def push_event(services: Services, recipient_id: str, at: dt.datetime) -> None:
    """Store one site visit at ``at``."""
    services.customer_data.add_events(
        [
            CustomerEvent.model_validate(
                {"recipient_id": recipient_id, "type": "site_visit", "at": at.isoformat()}
            )
        ]
    )


def push_order(services: Services, recipient_id: str, at: dt.datetime) -> None:
    """Store one order placed at ``at``."""
    services.customer_data.add_transactions(
        [
            Transaction.model_validate(
                {
                    "recipient_id": recipient_id,
                    "order_id": f"o-{at:%Y%m%d}",
                    "at": at.isoformat(),
                    "amount": "25",
                    "currency": "EUR",
                }
            )
        ]
    )


def image(client: FlaskClient, services: Services, recipient_id: str) -> Any:
    """The hero image for ``recipient_id``'s token."""
    return client.get("/i/daily/hero.png", query_string={"r": services.signer.sign(recipient_id)})


def click(client: FlaskClient, services: Services, recipient_id: str) -> str:
    """Where ``recipient_id``'s click on the hero goes."""
    response = client.get("/c/daily/hero", query_string={"r": services.signer.sign(recipient_id)})
    location: str = landing(response)
    return location


def is_personal(response: Any) -> bool:
    """Whether the image is the personal variant (else it must be the generic fallback)."""
    color = corner_color(response.data)
    assert color in (hex_rgb(PERSONAL), hex_rgb(FALLBACK_BACKGROUND)), color
    return color == hex_rgb(PERSONAL)


# salutation only if known and confirmed


@pytest.fixture
def salutation_block(services: Services) -> Services:
    """A banner that says "Dear {{ salutation }} {{ last_name }}" only when confirmed."""
    greeting = variant(
        "dear",
        CONFIRMED_SALUTATION,
        text="Dear {{ salutation }} {{ last_name }}",
        background=PERSONAL,
    )
    store_block(services, [greeting])
    return services


def test_confirmed_salutation_greets_by_salutation_and_name(
    client: FlaskClient, salutation_block: Services
) -> None:
    services = salutation_block
    push_profile(
        services, "anna", {"salutation": "Ms", "salutation_confirmed": True, "last_name": "Jansen"}
    )
    push_profile(
        services,
        "bram",
        {"salutation": "Mr", "salutation_confirmed": True, "last_name": "de Vries"},
    )
    anna, bram = image(client, services, "anna"), image(client, services, "bram")
    assert is_personal(anna)
    assert is_personal(bram)
    assert anna.data != bram.data  # the fields are drawn
    assert "X-Blanco-Fallback" not in anna.headers
    assert click(client, services, "anna") == "https://shop.example/dear"


@pytest.mark.parametrize(
    "attributes",
    [
        {"salutation": "Ms", "last_name": "Jansen"},  # not confirmed
        {"salutation": "Ms", "salutation_confirmed": False, "last_name": "Jansen"},
        {"salutation_confirmed": True, "last_name": "Jansen"},  # unknown
    ],
)
def test_unconfirmed_or_unknown_salutation_gets_the_generic_version(
    client: FlaskClient, salutation_block: Services, attributes: dict[str, Any]
) -> None:
    services = salutation_block
    push_profile(services, "anna", attributes)
    response = image(client, services, "anna")
    assert not is_personal(response)
    assert response.headers["X-Blanco-Fallback"] == "no variant matched"
    assert click(client, services, "anna") == FALLBACK_URL


def test_a_salutation_written_long_ago_gets_the_generic_version(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    fresh_salutation = {
        "all": [
            *CONFIRMED_SALUTATION["all"],
            {"attr": "salutation", "updated_within_days": 365},
        ]
    }
    greeting = variant("dear", fresh_salutation, text="Dear {{ salutation }}", background=PERSONAL)
    store_block(services, [greeting])
    two_years_ago = clock.now - dt.timedelta(days=730)
    push_profile(
        services, "anna", {"salutation": "Ms", "salutation_confirmed": True}, written=two_years_ago
    )
    assert not is_personal(image(client, services, "anna"))
    push_profile(
        services,
        "anna",
        {"salutation": "Ms"},
        source="web",
        written=clock.now - dt.timedelta(days=3),
    )
    assert is_personal(image(client, services, "anna"))


# first name only if seen lately


@pytest.fixture
def first_name_block(services: Services) -> Services:
    """A banner that greets by first name only when the recipient was seen in 90 days."""
    greeting = variant("hi", SEEN_LATELY, text="Hi {{ first_name }}!", background=PERSONAL)
    store_block(services, [greeting])
    return services


def test_stale_data_gets_the_generic_greeting(
    client: FlaskClient, first_name_block: Services, clock: FakeClock
) -> None:
    services = first_name_block
    push_profile(services, "anna", {"first_name": "Anna"})
    push_event(services, "anna", clock.now - dt.timedelta(days=120))
    response = image(client, services, "anna")
    assert not is_personal(response)
    assert response.headers["X-Blanco-Fallback"] == "no variant matched"
    assert click(client, services, "anna") == FALLBACK_URL


def test_a_recent_visit_brings_the_first_name_back(
    client: FlaskClient, first_name_block: Services, clock: FakeClock
) -> None:
    services = first_name_block
    push_profile(services, "anna", {"first_name": "Anna"})
    push_event(services, "anna", clock.now - dt.timedelta(days=120))
    assert not is_personal(image(client, services, "anna"))
    push_event(services, "anna", clock.now - dt.timedelta(days=10))
    assert is_personal(image(client, services, "anna"))
    assert click(client, services, "anna") == "https://shop.example/hi"


def test_time_passing_makes_the_data_stale(
    client: FlaskClient, first_name_block: Services, clock: FakeClock
) -> None:
    services = first_name_block
    push_profile(services, "anna", {"first_name": "Anna"})
    push_event(services, "anna", clock.now - dt.timedelta(days=80))
    assert is_personal(image(client, services, "anna"))
    clock.advance(days=15)
    assert not is_personal(image(client, services, "anna"))


def test_an_order_counts_as_being_seen(
    client: FlaskClient, first_name_block: Services, clock: FakeClock
) -> None:
    services = first_name_block
    push_profile(services, "anna", {"first_name": "Anna"})
    push_order(services, "anna", clock.now - dt.timedelta(days=120))
    assert not is_personal(image(client, services, "anna"))
    push_order(services, "anna", clock.now - dt.timedelta(days=30))
    assert is_personal(image(client, services, "anna"))


def test_never_seen_gets_the_generic_greeting(
    client: FlaskClient, first_name_block: Services
) -> None:
    push_profile(first_name_block, "anna", {"first_name": "Anna"})
    assert not is_personal(image(client, first_name_block, "anna"))


# consent off: generic content, no profile use


def test_without_consent_no_profile_field_reaches_the_image(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    store_block(services, [variant("hi", None, text="Hi {{ first_name }}", background=PERSONAL)])
    push_profile(services, "anna", {"first_name": "Anna", "consent_personalisation": True})
    push_profile(services, "bram", {"first_name": "Bram", "consent_personalisation": False})
    push_event(services, "bram", clock.now - dt.timedelta(days=1))  # fresh, still not used
    assert is_personal(image(client, services, "anna"))
    without = image(client, services, "bram")
    assert not is_personal(without)
    assert without.headers["X-Blanco-Fallback"] == "no consent"
    stranger = client.get("/i/daily/hero.png")  # no recipient at all
    assert without.data == stranger.data  # exactly the generic image: nothing of Bram's in it
    assert click(client, services, "bram") == FALLBACK_URL
