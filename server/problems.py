"""RFC 9457 problem details for the admin API."""

from __future__ import annotations

import math
from typing import Any

import redis
from flask import Response, jsonify
from pydantic import ValidationError

from models.errors import BlancoError, InvalidInput, Unauthorized, field_errors
from models.storage.breakers import CircuitOpen
from models.storage.scan import TopologyChanged

PROBLEM_TYPE_BASE = "https://blanco.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class StoreUnavailable(BlancoError):
    """Redis is down, too slow or full: the request may succeed later (``Retry-After``)."""

    status_code = 503
    title = "Service unavailable"

    def __init__(self, public_message: str, retry_after_seconds: int) -> None:
        super().__init__(public_message)
        self.retry_after_seconds = retry_after_seconds


UNREACHABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.exceptions.ClusterError,  # the cluster is down, or a slot is not served
    redis.exceptions.AskError,  # MOVED or ASK left after the redirects a call follows
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,  # no node could be reached to discover a cluster
    CircuitOpen,
    TopologyChanged,
)
"""Redis failures that are an outage (or a resharding) rather than a fault of Blanco's."""


def retry_after(window_seconds: float) -> int:
    """The ``Retry-After`` of a Redis failure: the circuit breaker's window, in whole seconds."""
    return max(1, math.ceil(window_seconds))


def redis_failure(exc: BaseException, retry_after_seconds: float) -> BlancoError:
    """The problem to answer for a Redis error: 503 for an outage, a timeout, a cluster that
    cannot be reached or is being resharded, or a full Redis (``OOM command not allowed``:
    maxmemory reached), a plain 500 for anything else."""
    retry = retry_after(retry_after_seconds)
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
        return StoreUnavailable(
            "Blanco's store (Redis) is full, so nothing more can be written now; nothing of "
            "this request was stored. Try again later.",
            retry,
        )
    if isinstance(exc, TopologyChanged):
        return StoreUnavailable(
            "Blanco's store (a Redis Cluster) is moving its slots; try again once it is stable.",
            retry,
        )
    if isinstance(exc, UNREACHABLE):
        return StoreUnavailable(
            "Blanco's store (Redis) cannot be reached right now. Try again later.", retry
        )
    return BlancoError("something went wrong on our side")


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
    if isinstance(error, StoreUnavailable):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="blanco"'  # RFC 9110 §11.6.1
    return response


def invalid(exc: ValidationError, data: Any, what: str = "request body") -> InvalidInput:
    """An InvalidInput error for a failed validation of ``data``."""
    count = exc.error_count()
    noun = "problem" if count == 1 else "problems"
    return InvalidInput(f"the {what} has {count} {noun}", field_errors(exc, data))
