"""Admin API: the audit log of erasures (who asked and when, never whom it was about)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from models.erasure import MAX_AUDIT_LISTED, ErasureRecord
from models.errors import FieldError, InvalidInput
from server.admin_api.registry import api
from server.admin_api.request_numbers import whole_number
from server.services import services

TAG = "audit"
DEFAULT_LISTED = 100


@api.operation(
    "GET",
    "/audit/erasures",
    summary="The latest erasures, newest first",
    tag=TAG,
    response=ErasureRecord,
    response_list=True,
    query={"limit": f"At most this many (default {DEFAULT_LISTED}, maximum {MAX_AUDIT_LISTED})."},
    errors=(422,),
)
def list_erasures() -> ResponseReturnValue:
    """Erasure audit entries: time, API key, request id and keys removed."""
    records = services().eraser.audit(_limit(request.args.get("limit")))
    return jsonify([record.model_dump(mode="json") for record in records])


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LISTED
    limit = whole_number(text)
    if limit is None or not 1 <= limit <= MAX_AUDIT_LISTED:
        raise InvalidInput(
            "invalid limit", [FieldError(("limit",), f"a number from 1 to {MAX_AUDIT_LISTED}")]
        )
    return limit
