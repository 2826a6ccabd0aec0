"""The baseline: a route answering a constant ~21 KB PNG from memory (benchmark apps only)."""

from __future__ import annotations

import io
import math
import random

from flask import Blueprint, Flask, Response
from PIL import Image

CONSTANT_PATH = "/_bench/constant.png"
CONSTANT_BYTES = 21 * 1024


def constant_png(size: int = CONSTANT_BYTES) -> bytes:
    """A deterministic PNG of about ``size`` bytes (noise, so compression cannot shrink it)."""
    side = math.isqrt(size // 3)
    pixels = random.Random(21).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


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
