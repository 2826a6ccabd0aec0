"""Transactions and behavioural events as the data team pushes them, with their natural keys.

A transaction is identified by its ``order_id`` (per recipient): sending it again replaces it.
An event is identified by its ``event_id``, or, when it has none, by a hash of its content
(type, moment, channel, attributes), so re-sending the same file stores nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from babel.numbers import is_currency
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from models.recipients.upserts import AttributeName, AttributeValue, RecipientId

EVENT_TYPES = ("site_visit", "app_login", "store_visit", "cs_contact", "booking")
"""The built-in event types; others are written ``custom:<name>``."""
CUSTOM_EVENT_PREFIX = "custom:"
_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
NATURAL_KEY_PATTERN = r"^[A-Za-z0-9_\-:@.]{1,128}$"
HASHED_KEY_PREFIX = "#"
"""Keys of events without an id start with this (an ``event_id`` cannot), then 32 hex digits."""
MEMBER_SEPARATOR = "|"


def _currency(code: str) -> str:
    code = code.upper()
    if not is_currency(code):
        raise ValueError(f"unknown ISO 4217 currency code {code!r}")
    return code


def _event_type(name: str) -> str:
    if name in EVENT_TYPES:
        return name
    custom = name.removeprefix(CUSTOM_EVENT_PREFIX)
    if name.startswith(CUSTOM_EVENT_PREFIX) and _CUSTOM_NAME.match(custom):
        return name
    raise ValueError(
        f"must be one of {', '.join(EVENT_TYPES)}, or custom:<name> "
        "(a-z, 0-9 and _, starting with a letter)"
    )


def _plain(amount: Decimal) -> Decimal:
    """An amount written out plainly (``1E+5`` is 100000, ``-0`` is 0)."""
    return Decimal(format(amount, "f")) + 0


EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _plausible(moment: dt.datetime) -> dt.datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("must be a time from 1970 to 2099")
    return moment


CurrencyCode = Annotated[str, AfterValidator(_currency)]
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False),
    AfterValidator(_plain),
]
Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
"""A time with a UTC offset, from 1970 to 2099 (an order or event of year 1 is a mistake)."""
"""A sum of money in its currency: never negative, at most 4 decimals."""
EventType = Annotated[str, AfterValidator(_event_type)]
NaturalKey = Annotated[str, Field(pattern=NATURAL_KEY_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderItem(_Model):
    """One line of an order."""

    id: NaturalKey = Field(
        description="The product's or content item's id (a feed item's id "
        "ties the order to the newsletter's items)."
    )
    quantity: int = Field(1, ge=1, le=1_000_000)
    price: Decimal | None = Field(
        None,
        ge=0,
        max_digits=18,
        decimal_places=4,
        allow_inf_nan=False,
        description="The unit price, in the order's currency.",
    )
    category: Annotated[str, Field(max_length=64)] | None = None


class Transaction(_Model):
    """One order, or one refund: sending the same ``order_id`` for the same recipient again
    replaces it."""

    recipient_id: RecipientId
    order_id: NaturalKey = Field(
        description="The order's id (a refund's own id, e.g. `o-1001-r1`: it is a record of "
        "its own)."
    )
    type: Literal["order", "refund"] = Field(
        "order",
        description="`refund`: money paid back. Its amount is taken off the recipient's "
        "monetary value; it is not an order (frequency, recency, last order and lifecycle "
        "ignore it).",
    )
    at: Moment = Field(description="When the order was placed (with a UTC offset).")
    amount: Amount = Field(
        description="What was paid (or, for a refund, paid back): never negative."
    )
    currency: CurrencyCode = Field(description="ISO 4217 code, e.g. EUR.")
    category: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Product category, e.g. city_trip."
    )
    items: list[OrderItem] = Field(
        default_factory=list, max_length=100, description="The order's lines, if known."
    )

    def listed(self) -> dict[str, Any]:
        """As the API lists it (without the recipient, and without lines when it has none)."""
        exclude = {"recipient_id"} if self.items else {"recipient_id", "items"}
        return self.model_dump(mode="json", exclude=exclude, exclude_none=True)

    def stored(self) -> str:
        """The JSON kept in the recipient's transactions hash (the key names the recipient)."""
        exclude = {"recipient_id", "items"} if not self.items else {"recipient_id"}
        return self.model_dump_json(by_alias=True, exclude=exclude)

    @classmethod
    def from_stored(cls, recipient_id: str, document: str) -> Transaction:
        """A transaction read back from its stored JSON."""
        return cls.model_validate({**json.loads(document), "recipient_id": recipient_id})


class CustomerEvent(_Model):
    """One behavioural event: a site visit, app login, store visit, customer-service contact,
    booking or ``custom:<name>``."""

    recipient_id: RecipientId
    event_id: NaturalKey | None = Field(
        None, description="The source's id; without one, a hash of the content identifies it."
    )
    type: EventType
    at: Moment = Field(description="When it happened (with a UTC offset).")
    channel: Annotated[str, Field(max_length=64)] = Field(
        "", description="Where it happened, e.g. web, app, store, phone."
    )
    attributes: dict[AttributeName, AttributeValue] = Field(default_factory=dict, max_length=50)

    @property
    def key(self) -> str:
        """The natural key: the event id, else ``#`` and a hash of the other fields."""
        if self.event_id is not None:
            return self.event_id
        content = json.dumps(
            [
                self.type,
                self.at.astimezone(dt.UTC).isoformat(),
                self.channel,
                self.attributes,
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        return HASHED_KEY_PREFIX + hashlib.sha256(content.encode()).hexdigest()[:32]

    @property
    def index_member(self) -> str:
        """The member of the events-by-time sorted set: ``<type>|<key>``."""
        return f"{self.type}{MEMBER_SEPARATOR}{self.key}"

    def stored(self) -> str:
        """The JSON kept in the recipient's events hash (the key names the recipient)."""
        return self.model_dump_json(by_alias=True, exclude={"recipient_id"}, exclude_none=True)

    @classmethod
    def from_stored(cls, recipient_id: str, document: str) -> CustomerEvent:
        """An event read back from its stored JSON."""
        return cls.model_validate({**json.loads(document), "recipient_id": recipient_id})


@dataclass(frozen=True)
class EventRef:
    """One entry of a recipient's events-by-time index: enough for event conditions."""

    type: str
    key: str
    at: dt.datetime


def parse_event_index(rows: list[tuple[str, float]] | list[Any]) -> list[EventRef]:
    """``ZRANGE … WITHSCORES`` rows of the events-by-time index as EventRefs, in the given
    order (pass them newest first from ``ZREVRANGEBYSCORE``)."""
    refs = []
    for member, score in rows:
        event_type, _, key = str(member).partition(MEMBER_SEPARATOR)
        refs.append(EventRef(event_type, key, dt.datetime.fromtimestamp(float(score), dt.UTC)))
    return refs


def last_event_times(refs: list[EventRef]) -> dict[str, dt.datetime]:
    """The most recent time of each event type among ``refs`` (for "a cs_contact within 7
    days" and "a site visit without a booking" conditions)."""
    latest: dict[str, dt.datetime] = {}
    for ref in refs:
        if ref.type not in latest or ref.at > latest[ref.type]:
            latest[ref.type] = ref.at
    return latest
