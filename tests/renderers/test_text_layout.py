"""Word wrap with widths summed from words: the same breaks as measuring every candidate line,
each text measured once per font."""

from __future__ import annotations

import itertools

import pytest
from PIL import ImageFont

from renderers.fonts import load_font
from renderers.text_layout import text_width, wrap

TEXTS = (
    "Anna, your city trip awaits",
    "Hi Bartholomew-Alexander, 20% off your next city break to Lisbon",
    "Zoë, ¿listo para el fin de semana? 🎉 Últimas plazas",
    "مرحبا محمد، رحلتك إلى المدينة في انتظارك",
    "AVAVAV WAWAWA To Ty Yo LT LY",  # kerning pairs at the edges of words
    "word " * 30,
)


def wrap_measuring_every_candidate(text: str, font: ImageFont.FreeTypeFont, box: int) -> list[str]:
    """The plain greedy wrap: every candidate line measured whole."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > box:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


@pytest.mark.parametrize(("text", "size"), list(itertools.product(TEXTS, (14, 36, 72))))
def test_breaks_are_those_of_measuring_every_candidate(text: str, size: int) -> None:
    font = load_font("inter", "bold", size)
    for box in range(40, 1300, 7):
        assert wrap(text, font, box) == wrap_measuring_every_candidate(text, font, box), box


def test_a_text_is_measured_once_per_font() -> None:
    font = load_font("dejavu-sans", "regular", 23)
    text_width.cache_clear()
    wrap("Anna, your city trip awaits", font, 200)
    first = text_width.cache_info()
    wrap("Bram, your city trip awaits", font, 200)
    second = text_width.cache_info()
    assert first.misses >= 6  # the space and five words, and lines near the edge
    assert second.misses - first.misses <= 3  # "Bram," and lines with it near the edge
    assert text_width(font, "awaits") == font.getlength("awaits")
