"""The fonts shipped with Blanco (see ``fonts/LICENSE-*``), loaded once per size."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import ImageFont

FONT_DIR = Path(__file__).parent / "fonts"
Weight = Literal["regular", "bold"]
FONT_FILES: dict[tuple[str, Weight], str] = {
    ("dejavu-sans", "regular"): "DejaVuSans.ttf",
    ("dejavu-sans", "bold"): "DejaVuSans-Bold.ttf",
}
DEFAULT_FAMILY = "dejavu-sans"


def families() -> list[dict[str, object]]:
    """The bundled font families with their weights, for the admin API."""
    result: dict[str, list[str]] = {}
    for family, weight in FONT_FILES:
        result.setdefault(family, []).append(weight)
    return [{"family": family, "weights": weights} for family, weights in result.items()]


@lru_cache(maxsize=256)
def load_font(family: str, weight: Weight, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType font of the bundled family, weight and pixel size."""
    filename = FONT_FILES.get((family, weight)) or FONT_FILES[(DEFAULT_FAMILY, weight)]
    return ImageFont.truetype(str(FONT_DIR / filename), size=size)
