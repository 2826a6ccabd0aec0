"""The bare baseline: a Flask app with no Blanco code at all, answering one constant PNG.

gunicorn loads it as ``benchmarks.bare_app:app``. Its PNG (about 21 KB of noise, so compression
cannot shrink it) is generated once when the module is imported: Pillow only, no I/O. Only
Flask, Pillow and the standard library are imported here, so that the baseline carries none of
Blanco's costs (request ids, metrics, its WSGI middleware).
"""

from __future__ import annotations

import io
import math
import random

from flask import Flask, Response
from PIL import Image

PATH = "/constant.png"
PNG_BYTES = 21 * 1024  # benchmarks.targets.BARE_PNG_BYTES (not imported: nothing but Flask here)


def constant_png(size: int = PNG_BYTES) -> bytes:
    """A deterministic PNG of about ``size`` bytes (RGB noise, PNG level 1)."""
    side = math.isqrt(size // 3)
    pixels = random.Random(21).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def create_bare_app() -> Flask:
    """A Flask app whose one route answers the same PNG bytes on every request."""
    body = constant_png()
    bare = Flask(__name__)

    @bare.get(PATH)
    def constant() -> Response:
        """The PNG, from memory."""
        return Response(body, mimetype="image/png")

    return bare


app = create_bare_app()
