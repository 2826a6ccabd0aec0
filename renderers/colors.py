"""Colour values as they appear in renderer parameters."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Color = Annotated[
    str, StringConstraints(pattern=r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$", strip_whitespace=True)
]
"""``#RRGGBB`` or ``#RRGGBBAA``."""
