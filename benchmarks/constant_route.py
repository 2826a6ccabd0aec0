"""Blanco's own constant route: the bare app's PNG served from inside Blanco's app (benchmark
apps only). It pays Blanco's Flask hooks (request ids, request metrics) and middleware, so as a
baseline it flatters Blanco; the bare app (``benchmarks.bare_app``) is the honest one."""

from __future__ import annotations

from flask import Blueprint, Flask, Response

from benchmarks.bare_app import constant_png

CONSTANT_PATH = "/_bench/constant.png"


def register_constant_route(app: Flask) -> bytes:
    """Add ``GET CONSTANT_PATH`` to ``app``; return the bytes it answers."""
    body = constant_png()
    bp = Blueprint("bench_constant", __name__)

    @bp.get(CONSTANT_PATH)
    def constant() -> Response:
        """The same PNG bytes on every request."""
        return Response(body, mimetype="image/png")

    app.register_blueprint(bp)
    return body
