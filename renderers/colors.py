"""Colour values as they appear in renderer parameters."""

from __future__ import annotations

from typing import Annotated

from PIL import Image
from pydantic import StringConstraints

Color = Annotated[
    str, StringConstraints(pattern=r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$", strip_whitespace=True)
]
"""``#RRGGBB`` or ``#RRGGBBAA``."""


def has_alpha(color: str) -> bool:
    """Whether ``color`` is not fully opaque (``#RRGGBBAA`` with an alpha below ``FF``)."""
    return len(color) == 9 and int(color[7:], 16) < 255


def canvas(size: tuple[int, int], background: str) -> Image.Image:
    """A fresh canvas of ``background``: RGB when it is opaque (as every canvas was before),
    RGBA when it has alpha, so transparent parts stay transparent (PNG and WebP keep them)."""
    return Image.new("RGBA" if has_alpha(background) else "RGB", size, background)


def ink(image: Image.Image, color: str) -> str:
    """``color`` to draw text and lines with on ``image``. On an RGBA canvas without its alpha,
    as on RGB (where Pillow ignores it): Pillow then composites the anti-aliased text over what
    is below (an edge pixel on a transparent background keeps the text's colour, at partial
    alpha: no dark fringe), where a colour with alpha would replace the pixels' alpha."""
    return color[:7] if image.mode == "RGBA" else color
