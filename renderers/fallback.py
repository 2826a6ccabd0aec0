"""The last-resort image: served when nothing else can be, so an inbox never shows a broken one."""

from __future__ import annotations

import base64

TRANSPARENT_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNgYGBgAAAABQABeqhXUAAAAABJRU5ErkJggg=="
)
"""A valid 1×1 PNG whose one pixel is fully transparent (RGBA 0, 0, 0, 0)."""
