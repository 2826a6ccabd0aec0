"""RFC 9457 problem details for the admin API."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from pydantic import ValidationError

from models.errors import BlancoError, InvalidInput, Unauthorized, field_errors

PROBLEM_TYPE_BASE = "https://blanco.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(error: BlancoError) -> Response:
    """The problem details document for ``error``."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.title.lower().replace(" ", "-"),
        "title": error.title,
        "status": error.status_code,
        "detail": error.public_message,
    }
    if isinstance(error, InvalidInput) and error.errors:
        body["errors"] = [
            {"pointer": e.pointer, "field": e.field, "detail": e.message} for e in error.errors
        ]
    response = jsonify(body)
    response.status_code = error.status_code
    response.mimetype = PROBLEM_MEDIA_TYPE
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="blanco"'  # RFC 9110 §11.6.1
    return response


def invalid(exc: ValidationError, data: Any, what: str = "request body") -> InvalidInput:
    """An InvalidInput error for a failed validation of ``data``."""
    count = exc.error_count()
    noun = "problem" if count == 1 else "problems"
    return InvalidInput(f"the {what} has {count} {noun}", field_errors(exc, data))
