"""Routes for load balancers and operators."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from models.storage.health import redis_health
from server.services import services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: every Redis node answers PING (and a cluster's state is ok)."""
    health = redis_health(services().redis_open)
    body: dict[str, object] = {
        "status": "ok" if health.ready else "unavailable",
        "redis": "ok" if health.ready else "unavailable",
        "nodes": health.nodes,
    }
    if health.cluster_state is not None:
        body["cluster_state"] = health.cluster_state
    return jsonify(body), 200 if health.ready else 503
