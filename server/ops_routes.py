"""Routes for load balancers and operators."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from server.services import services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: Redis answers PING."""
    try:
        services().redis.ping()
    except (redis.RedisError, OSError) as exc:
        return jsonify(status="unavailable", redis=type(exc).__name__), 503
    return jsonify(status="ok", redis="ok")
