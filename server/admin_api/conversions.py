"""Admin API: conversions, one by one, in bulk (JSON Lines) and as Segment or RudderStack
``Order Completed`` events; and a recipient's orders with their credit."""

from __future__ import annotations

from collections.abc import Sequence

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from models.conversions.attribution import Attribution
from models.conversions.conversions import Recorded
from models.conversions.inputs import ORDER_COMPLETED as ORDER
from models.conversions.inputs import ConversionIn, TrackPayload, from_track_event
from models.errors import Conflict, FieldError, InvalidInput, RowsRefused, UnsupportedMediaType
from models.ingest.bulk_ingest import ingest_jsonl
from models.recipients.tombstones import ERASED_DETAIL
from models.storage import keys
from server.admin_api.bulk_bodies import JSONL_TYPES, spooled_body
from server.admin_api.customer_data import RECIPIENT, _recipient
from server.admin_api.registry import api
from server.services import services

TAG = "conversions"


def record(conversions: Sequence[ConversionIn]) -> Recorded:
    """Record ``conversions`` (each token checked here; the one core does the rest)."""
    blanco = services()
    refs = [blanco.signer.verify_click(c.click) if c.click else None for c in conversions]
    return blanco.conversions.record_incoming(conversions, refs, blanco.clock())


@api.operation(
    "POST",
    "/conversions",
    summary="Record one conversion (idempotent by order id), credited to the email that earned it",
    tag=TAG,
    scope="ingest",
    body=ConversionIn,
    status=201,
    errors=(409, 422),
)
def post_conversion(body: ConversionIn) -> ResponseReturnValue:
    """Store the order and answer its credit."""
    try:
        recorded = record([body])
    except RowsRefused as refused:
        first = refused.refusals[0]
        if first.message == ERASED_DETAIL:
            raise Conflict(ERASED_DETAIL) from None
        raise InvalidInput(
            first.message, [FieldError(_path(first.pointer), first.message)]
        ) from None
    return jsonify(recorded.credited[0].as_dict()), 201


def _path(pointer: str) -> tuple[str, ...]:
    return tuple(part for part in pointer.split("/") if part)


@api.operation(
    "POST",
    "/conversions/bulk",
    summary="Record conversions in bulk (JSON Lines), idempotent by order id",
    tag=TAG,
    scope="ingest",
    body=ConversionIn,
    body_media_type="application/x-ndjson",
    errors=(413, 415),
)
def bulk_conversions() -> ResponseReturnValue:
    """One ConversionIn per line; good ones are recorded, bad ones reported by line."""
    if request.mimetype not in JSONL_TYPES:
        raise UnsupportedMediaType("send JSON Lines (application/x-ndjson)")
    with spooled_body() as body:
        report = ingest_jsonl(body, ConversionIn, lambda rows: record(rows).stored)
    return jsonify(report.as_dict())


@api.operation(
    "POST",
    "/conversions/track",
    summary="Record the Order Completed events of a Segment or RudderStack webhook",
    tag=TAG,
    scope="ingest",
    body=TrackPayload,
    errors=(415, 422),
)
def track_events(body: TrackPayload) -> ResponseReturnValue:
    """A ``track`` event, or ``{"batch": [...]}``: every ``Order Completed`` is recorded as a
    conversion (its ``userId`` the recipient); other events are ignored."""
    events = body.events()

    def pointer(index: int) -> tuple[str | int, ...]:
        return ("batch", index) if body.batch is not None else ()

    token_param = services().settings.click_token_param or "bl_click"
    orders = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("event") == ORDER]
    found: list[ConversionIn] = []
    where: list[int] = []
    errors: list[FieldError] = []
    for index in orders:
        try:
            conversion = from_track_event(events[index], token_param)
        except InvalidInput as invalid:
            errors += [FieldError((*pointer(index), *e.path), e.message) for e in invalid.errors]
            continue
        if conversion is not None:
            found.append(conversion)
            where.append(index)
    if orders and not found:
        raise InvalidInput("no Order Completed event is a usable order", errors)
    recorded = 0
    if found:
        try:
            recorded = record(found).stored
        except RowsRefused as refused:
            recorded = refused.stored
            errors += [
                FieldError((*pointer(where[r.index]), *_path(r.pointer)), r.message)
                for r in refused.refusals
            ]
    return jsonify(
        {
            "received": len(events),
            "orders": len(orders),
            "recorded": recorded,
            "ignored": len(events) - len(orders),
            "errors": [{"pointer": e.pointer, "detail": e.message} for e in errors],
        }
    )


@api.operation(
    "GET",
    f"{RECIPIENT}/conversions",
    summary="A recipient's orders with the email each was credited to, oldest first",
    tag=TAG,
    scope="ingest",
    errors=(422,),
)
def get_conversions(recipient_id: str) -> ResponseReturnValue:
    """Every stored order of the recipient, and its credit (``none`` until one is made)."""
    blanco = services()
    rid = _recipient(recipient_id)
    orders = [t for t in blanco.customer_data.transactions(rid) if t.type == "order"]
    credits = blanco.redis.hgetall(keys.attributions(rid))
    return jsonify(
        {
            "recipient_id": rid,
            "conversions": [
                {
                    **t.listed(),
                    "attribution": (
                        found.as_dict()
                        if (found := Attribution.from_stored(credits.get(t.order_id)))
                        else None
                    ),
                }
                for t in orders
            ],
        }
    )
