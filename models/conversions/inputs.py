"""A conversion as it arrives: by the admin API, the shop's pixel, or a Segment or RudderStack
``Order Completed`` event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import FieldError, InvalidInput, field_errors
from models.recipients.customer_data import (
    Amount,
    CurrencyCode,
    Moment,
    NaturalKey,
    OrderItem,
    Transaction,
)
from models.recipients.upserts import RecipientId

ORDER_COMPLETED = "Order Completed"
"""The event name of the Segment e-commerce spec (RudderStack follows it)."""
MAX_TOKEN_LENGTH = 100


class ConversionIn(BaseModel):
    """One order a recipient placed: whose it is (their id, or the attribution token of the
    click that brought them), what it was worth, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient_id: RecipientId | None = Field(
        None, description="The recipient's id; may be left out when `click` is given."
    )
    order_id: NaturalKey = Field(description="The order's id: sending it again replaces it.")
    amount: Amount = Field(description="What the order is worth, in `currency`.")
    currency: CurrencyCode = Field(description="ISO 4217 code, e.g. EUR.")
    at: Moment | None = Field(
        None, description="When the order was placed (with a UTC offset). Default: now."
    )
    items: list[OrderItem] = Field(default_factory=list, max_length=100)
    category: str | None = Field(None, max_length=64)
    click: str | None = Field(
        None,
        max_length=MAX_TOKEN_LENGTH,
        description="The attribution token of the click that brought the buyer (the "
        "`bl_click` parameter of the landing page, or the `blanco_click` cookie).",
    )

    def transaction(self, recipient_id: str, now: dt.datetime) -> Transaction:
        """The order as the recipient's transaction."""
        return Transaction(
            recipient_id=recipient_id,
            order_id=self.order_id,
            type="order",
            at=self.at or now,
            amount=self.amount,
            currency=self.currency,
            category=self.category,
            items=self.items,
        )


class TrackPayload(BaseModel):
    """What a Segment or RudderStack webhook posts: one ``track`` event, or ``{"batch":
    [...]}`` of them. Events other than ``Order Completed`` are ignored; fields not named here
    are allowed and ignored."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str | None = Field(None, description="`track` for a tracked event.")
    event: str | None = Field(None, description="The event's name: `Order Completed`.")
    user_id: str | None = Field(None, alias="userId", description="The recipient's id.")
    timestamp: str | None = Field(None, description="When the order was placed (ISO 8601).")
    properties: dict[str, Any] | None = Field(
        None,
        description="`order_id`, `total` (else `revenue`, else `value`), `currency`, "
        "`products` (`product_id` or `sku`, `price`, `quantity`, `category`), and the click's "
        "attribution token under the token parameter's name.",
    )
    context: dict[str, Any] | None = Field(
        None, description="`page.url` may carry the click's attribution token."
    )
    batch: list[dict[str, Any]] | None = Field(
        None, max_length=1000, description="Several events at once."
    )

    def events(self) -> list[dict[str, Any]]:
        """The events posted, as posted."""
        if self.batch is not None:
            return self.batch
        return [self.model_dump(by_alias=True, exclude_none=True)]


def from_track_event(event: Any, token_param: str) -> ConversionIn | None:
    """A Segment (or RudderStack) ``track`` event as a conversion: None for another event;
    InvalidInput (pointing into the event) for an ``Order Completed`` that cannot be one.

    The recipient is the event's ``userId``; the value is ``properties.total``, else
    ``revenue``, else ``value``; the lines are ``properties.products``; an attribution token
    may come as ``properties.<token_param>`` or in ``context.page.url``'s query."""
    if not isinstance(event, dict) or event.get("event") != ORDER_COMPLETED:
        return None
    properties = event.get("properties")
    if not isinstance(properties, dict):
        raise InvalidInput(
            "an Order Completed event needs properties",
            [FieldError(("properties",), "an object is required")],
        )
    amount = next(
        (properties[name] for name in ("total", "revenue", "value") if name in properties), None
    )
    document: dict[str, Any] = {
        "recipient_id": event.get("userId") or None,
        "order_id": properties.get("order_id") or properties.get("orderId"),
        "amount": _decimal(amount),
        "currency": properties.get("currency") or "USD",
        "at": event.get("timestamp"),
        "items": [_item(p) for p in properties.get("products") or [] if isinstance(p, dict)],
        "click": properties.get(token_param) or _token_in_page(event, token_param),
    }
    given = {k: v for k, v in document.items() if v is not None}
    try:
        return ConversionIn.model_validate(given)
    except ValidationError as invalid:
        errors = [
            FieldError(_in_event(error.path, properties), error.message)
            for error in field_errors(invalid, given)
        ]
        raise InvalidInput("the Order Completed event is not a usable order", errors) from None


_EVENT_PATHS: dict[str | int, tuple[str, ...]] = {
    "recipient_id": ("userId",),
    "order_id": ("properties", "order_id"),
    "currency": ("properties", "currency"),
    "at": ("timestamp",),
    "items": ("properties", "products"),
}


def _in_event(path: tuple[str | int, ...], properties: dict[str, Any]) -> tuple[str | int, ...]:
    """Where a conversion field's error lies in the event that gave it."""
    if not path:
        return path
    head, rest = path[0], path[1:]
    if head == "amount":
        named = next((n for n in ("total", "revenue", "value") if n in properties), "total")
        return ("properties", named, *rest)
    if head == "click":
        return ("properties", "click token", *rest)
    return (*_EVENT_PATHS.get(head, (str(head),)), *rest)


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        try:
            return Decimal(repr(value))
        except InvalidOperation:
            return value
    return value


def _item(product: dict[str, Any]) -> dict[str, Any]:
    item = {
        "id": product.get("product_id") or product.get("sku") or product.get("id"),
        "quantity": product.get("quantity") or 1,
        "price": _decimal(product.get("price")),
        "category": product.get("category"),
    }
    return {k: v for k, v in item.items() if v is not None}


def _token_in_page(event: dict[str, Any], token_param: str) -> str | None:
    context = event.get("context")
    page = context.get("page") if isinstance(context, dict) else None
    url = page.get("url") if isinstance(page, dict) else None
    if not isinstance(url, str):
        return None
    found = parse_qs(urlsplit(url).query).get(token_param)
    return found[0] if found else None
