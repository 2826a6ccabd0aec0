"""Admin API: transactions and behavioural events, in bulk (JSON Lines or CSV) and one by one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from models.errors import FieldError, InvalidInput
from models.ingest.csv_rows import EVENTS, TRANSACTIONS
from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.upserts import valid_recipient_id
from server.admin_api.bulk_bodies import csv_body, ingest_request
from server.admin_api.registry import api
from server.admin_api.request_numbers import whole_number
from server.services import services

TAG = "customer data"
RECIPIENT = "/recipients/<recipient_id>"
MAX_EVENTS_LISTED = 1000


def _recipient(recipient_id: str) -> str:
    if not valid_recipient_id(recipient_id):
        raise InvalidInput(
            "invalid recipient id",
            [FieldError(("recipient_id",), "1-128 characters of A-Z a-z 0-9 _ - : @ .")],
        )
    return recipient_id


def _event_document(event: CustomerEvent) -> dict[str, Any]:
    return {"key": event.key, **event.model_dump(mode="json", exclude_none=True)}


@api.operation(
    "POST",
    "/transactions/bulk",
    summary="Bulk add transactions (JSON Lines or CSV), idempotent by order id",
    tag=TAG,
    scope="ingest",
    body=Transaction,
    body_media_type="application/x-ndjson",
    other_bodies=csv_body(TRANSACTIONS),
    errors=(415,),
)
def bulk_transactions() -> ResponseReturnValue:
    """One Transaction per line or CSV row; good ones are stored (and their orders credited as
    conversions), bad ones reported by line."""
    conversions = services().conversions
    return jsonify(
        ingest_request(TRANSACTIONS, lambda rows: conversions.record(rows).stored).as_dict()
    )


@api.operation(
    "POST",
    "/events/bulk",
    summary="Bulk add events (JSON Lines or CSV), idempotent by event id or content",
    tag=TAG,
    scope="ingest",
    body=CustomerEvent,
    body_media_type="application/x-ndjson",
    other_bodies=csv_body(EVENTS),
    errors=(415,),
)
def bulk_events() -> ResponseReturnValue:
    """One CustomerEvent per line or CSV row; good ones are stored, bad ones reported by line."""
    return jsonify(ingest_request(EVENTS, services().customer_data.add_events).as_dict())


@api.operation(
    "POST",
    f"{RECIPIENT}/events",
    summary="Add one event (the next open sees it)",
    tag=TAG,
    scope="ingest",
    body=CustomerEvent,
    body_fills=("recipient_id", "recipient_id"),
    status=201,
    errors=(422,),
)
def post_event(recipient_id: str, body: CustomerEvent) -> ResponseReturnValue:
    """Store one event; sending it again changes nothing."""
    services().customer_data.add_events([body])
    return jsonify(_event_document(body)), 201


@api.operation(
    "GET",
    f"{RECIPIENT}/transactions",
    summary="A recipient's transactions, oldest first",
    tag=TAG,
    scope="ingest",
    errors=(422,),
)
def get_transactions(recipient_id: str) -> ResponseReturnValue:
    """Every stored transaction of a recipient."""
    found = services().customer_data.transactions(_recipient(recipient_id))
    return jsonify(
        {
            "recipient_id": recipient_id,
            "transactions": [t.listed() for t in found],
        }
    )


@api.operation(
    "GET",
    f"{RECIPIENT}/events",
    summary="A recipient's kept events, newest first",
    tag=TAG,
    scope="ingest",
    query={
        "since": "Only events at or after this moment (ISO 8601 with an offset).",
        "limit": f"At most this many events (default and maximum {MAX_EVENTS_LISTED}).",
    },
    errors=(422,),
)
def get_events(recipient_id: str) -> ResponseReturnValue:
    """The recipient's events, newest first."""
    since = _since(request.args.get("since"))
    limit = _limit(request.args.get("limit"))
    found = services().customer_data.recent_events(_recipient(recipient_id), since, limit)
    return jsonify(
        {
            "recipient_id": recipient_id,
            "events": [
                {k: v for k, v in _event_document(e).items() if k != "recipient_id"} for e in found
            ],
        }
    )


def _since(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            "invalid since", [FieldError(("since",), "an ISO 8601 moment with an offset")]
        )
    return moment


def _limit(text: str | None) -> int:
    if text is None:
        return MAX_EVENTS_LISTED
    limit = whole_number(text)
    if limit is None or not 1 <= limit <= MAX_EVENTS_LISTED:
        raise InvalidInput(
            "invalid limit", [FieldError(("limit",), f"a number from 1 to {MAX_EVENTS_LISTED}")]
        )
    return limit
