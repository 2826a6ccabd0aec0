"""Admin API: real-time data sources, pushed by the data team and read at open time."""

from __future__ import annotations

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from models.campaigns.live_data import LivePush, LiveSource, LiveSourceAnswer, valid_source_name
from models.errors import FieldError, InvalidInput, NotFound
from server.admin_api.registry import api
from server.services import services

TAG = "live data"
SOURCE = "/live/<source>"


def _checked(source: str) -> str:
    if not valid_source_name(source):
        raise InvalidInput(
            "invalid live source name",
            [FieldError(("source",), "1-64 characters of a-z 0-9 _, a letter first")],
        )
    return source


def _answer(stored: LiveSource) -> dict[str, object]:
    return LiveSourceAnswer.of(stored, services().clock()).model_dump(mode="json")


@api.operation(
    "PUT",
    SOURCE,
    summary="Push a live source's values (replaces the whole set)",
    tag=TAG,
    scope="ingest",
    body=LivePush,
    body_fills=("source", "source"),
    response=LiveSourceAnswer,
    errors=(409, 422),
)
def put_live_source(source: str, body: LivePush) -> ResponseReturnValue:
    """Replace the source's values, stamped now; the next open sees them (409: too many)."""
    return jsonify(_answer(services().live.put(body, services().clock())))


@api.operation(
    "GET",
    SOURCE,
    summary="Get a live source",
    tag=TAG,
    scope="ingest",
    response=LiveSourceAnswer,
    errors=(404, 422),
)
def get_live_source(source: str) -> ResponseReturnValue:
    """The source's values, when they were pushed and whether they are still fresh."""
    stored = services().live.get(_checked(source))
    if stored is None:
        raise NotFound(f"no live source {source!r}")
    return jsonify(_answer(stored))


@api.operation(
    "GET",
    "/live",
    summary="List the live sources",
    tag=TAG,
    scope="ingest",
    response=LiveSourceAnswer,
    response_list=True,
)
def list_live_sources() -> ResponseReturnValue:
    """Every live source by name, with its freshness now."""
    return jsonify([_answer(stored) for stored in services().live.list()])


@api.operation(
    "DELETE",
    SOURCE,
    summary="Remove a live source",
    tag=TAG,
    status=204,
    errors=(404, 422),
)
def delete_live_source(source: str) -> ResponseReturnValue:
    """Remove the source: variants that require it fall back, conditions on it are false."""
    if not services().live.delete(_checked(source)):
        raise NotFound(f"no live source {source!r}")
    return Response(status=204)
