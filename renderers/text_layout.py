"""Fitting text into a box: word wrap, shrink to fit, ellipsis as the last resort."""

from __future__ import annotations

from dataclasses import dataclass

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


def _width(font: ImageFont.FreeTypeFont, text: str) -> float:
    return font.getlength(text)


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap; a single word wider than the box stays whole on its own line."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and _width(font, candidate) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _ellipsize(line: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    while line and _width(font, line + ELLIPSIS) > max_width:
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
            and all(_width(font, line) <= max_width for line in lines)
        )
        if fits or not shrink or size <= MIN_FONT_SIZE:
            break
        size = max(MIN_FONT_SIZE, int(size * 0.9))
    if not fits:
        room = max(1, min(max_lines, max_height // line_height))
        overflow = len(lines) > room
        lines = lines[:room]
        lines = [
            _ellipsize(line, font, max_width) if _width(font, line) > max_width else line
            for line in lines
        ]
        if overflow and lines and not lines[-1].endswith(ELLIPSIS):
            lines[-1] = _ellipsize(lines[-1] + " ", font, max_width)
    return FittedText(lines, font, line_height)
