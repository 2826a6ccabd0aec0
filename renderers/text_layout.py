"""Fitting text into a box: word wrap, shrink to fit, ellipsis as the last resort."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

from renderers.fonts import Weight, font_for_text

ELLIPSIS = "…"
MIN_FONT_SIZE = 8


@dataclass(frozen=True)
class FittedText:
    """Lines that fit the box, in the font size that made them fit."""

    lines: list[str]
    font: ImageFont.FreeTypeFont
    line_height: int


WIDTHS_KEPT = 16384
"""Text widths kept per process, by font and text: a template's words recur in every render."""
ESTIMATE_SLACK = 0.1
"""How far (in ems) a line's width summed from its words may be from the box edge and still be
trusted; nearer the edge, the whole line is measured. Kerning and shaping across a space move a
width by far less."""


@lru_cache(maxsize=WIDTHS_KEPT)
def text_width(font: ImageFont.FreeTypeFont, text: str) -> float:
    """``font.getlength(text)``, kept: with raqm each measure costs tens of microseconds,
    however short the text."""
    return float(font.getlength(text))


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap; a single word wider than the box stays whole on its own line.

    A candidate line's width is summed from its words and spaces (each measured once, and kept
    across renders); only a candidate that ends up within ``ESTIMATE_SLACK`` of the edge is
    measured whole, so the breaks are those of measuring every candidate."""
    lines: list[str] = []
    current = ""
    current_width = 0.0
    space = text_width(font, " ")
    slack = ESTIMATE_SLACK * font.size
    for word in text.split():
        word_width = text_width(font, word)
        if not current:
            current, current_width = word, word_width
            continue
        candidate = f"{current} {word}"
        estimate = current_width + space + word_width
        if abs(estimate - max_width) <= slack:
            estimate = text_width(font, candidate)
        if estimate > max_width:
            lines.append(current)
            current, current_width = word, word_width
        else:
            current, current_width = candidate, estimate
    if current:
        lines.append(current)
    return lines


def _ellipsize(line: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    while line and text_width(font, line + ELLIPSIS) > max_width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


def fit(
    text: str,
    *,
    family: str,
    weight: Weight,
    size: int,
    max_width: int,
    max_height: int,
    max_lines: int,
    line_spacing: float,
    shrink: bool = True,
) -> FittedText:
    """Wrap ``text`` in the box, shrinking the font down to MIN_FONT_SIZE if needed."""
    size = max(size, 1)
    while True:
        font = font_for_text(text, family, weight, size)
        line_height = max(1, round(size * line_spacing))
        lines = wrap(text, font, max_width)
        fits = (
            len(lines) <= max_lines
            and len(lines) * line_height <= max(max_height, line_height)
            and all(text_width(font, line) <= max_width for line in lines)
        )
        if fits or not shrink or size <= MIN_FONT_SIZE:
            break
        size = max(MIN_FONT_SIZE, int(size * 0.9))
    if not fits:
        room = max(1, min(max_lines, max_height // line_height))
        overflow = len(lines) > room
        lines = lines[:room]
        lines = [
            _ellipsize(line, font, max_width) if text_width(font, line) > max_width else line
            for line in lines
        ]
        if overflow and lines and not lines[-1].endswith(ELLIPSIS):
            lines[-1] = _ellipsize(lines[-1] + " ", font, max_width)
    return FittedText(lines, font, line_height)
