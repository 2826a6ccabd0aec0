"""Fitting text into a box: word wrap, balanced lines, shrink to fit, ellipsis as the last resort.

Texts that share a box (a banner's lines, a card's title and subtitle) are fitted as a group:
first wrapped, then shrunk together, keeping the ratios of their sizes, never below each text's
minimum size; only a group that does not fit at its minimum sizes is cut short with an ellipsis.
So a long name in a headline never shrinks it below the line under it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

from renderers.fonts import Weight, font_for_text

ELLIPSIS = "…"
MIN_FONT_SIZE = 8
"""No text is ever drawn smaller than this (output pixels)."""
MIN_SIZE_SHARE = 0.5
"""By default a text in a group shrinks to at most this share of its size (``min_size_for``)."""
SHRINK_STEP = 0.9
"""Each try at shrinking takes the sizes to this share of the last try's."""


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


def balance(lines: list[str], font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """The words of ``lines`` in as many lines, as even in length as they can be: the narrowest
    width that still wraps them in that many lines, wrapped greedily (as CSS's
    ``text-wrap: balance``). So the last line is no lone short word ("…20% off for / you")
    unless one word is all it can hold.

    Widths are summed from the words (kept per font); the result is measured whole and given up
    for ``lines`` if a line of it would not fit ``max_width``.
    """
    if len(lines) < 2:
        return lines
    words = " ".join(lines).split()
    widths = [text_width(font, word) for word in words]
    space = text_width(font, " ")
    low = max(widths)
    high = min(float(max_width), max(sum_width(line, font, space) for line in lines))
    if low >= high:
        return lines
    while high - low > 0.5:
        middle = (low + high) / 2
        if len(_breaks(widths, space, middle)) <= len(lines):
            high = middle
        else:
            low = middle
    breaks = _breaks(widths, space, high)
    if len(breaks) != len(lines):
        return lines
    balanced = [
        " ".join(words[a:b]) for a, b in zip(breaks, [*breaks[1:], len(words)], strict=True)
    ]
    if any(text_width(font, line) > max_width for line in balanced):
        return lines
    return balanced


def sum_width(line: str, font: ImageFont.FreeTypeFont, space: float) -> float:
    """A line's width summed from its words and spaces."""
    words = line.split()
    return sum(text_width(font, word) for word in words) + space * (len(words) - 1)


def _breaks(widths: Sequence[float], space: float, limit: float) -> list[int]:
    """The index of the first word of each line of a greedy wrap at ``limit`` (summed widths)."""
    starts = [0]
    current = widths[0]
    for index in range(1, len(widths)):
        candidate = current + space + widths[index]
        if candidate > limit:
            starts.append(index)
            current = widths[index]
        else:
            current = candidate
    return starts


def _ellipsize(line: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    while line and text_width(font, line + ELLIPSIS) > max_width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


def min_size_for(size: int) -> int:
    """The default minimum size of a text of ``size`` in a group: ``MIN_SIZE_SHARE`` of it,
    never below MIN_FONT_SIZE (nor above the size)."""
    return min(size, max(MIN_FONT_SIZE, math.ceil(size * MIN_SIZE_SHARE)))


@dataclass(frozen=True)
class TextBox:
    """One text of a group to fit, with its style, its size and the least it may shrink to."""

    text: str
    family: str
    weight: Weight
    size: int
    max_lines: int
    line_spacing: float
    min_size: int = MIN_FONT_SIZE
    shrink: bool = True
    balance: bool = True

    def size_at(self, factor: float) -> int:
        """The size at ``factor`` times the configured one, kept within its limits."""
        size = max(self.size, 1)
        if not self.shrink:
            return size
        return min(size, max(self.min_size, MIN_FONT_SIZE, round(size * factor)))

    def smallest(self) -> int:
        """The size at which it shrinks no further."""
        return self.size_at(0.0)


def _wrapped(box: TextBox, size: int, max_width: int) -> FittedText:
    font = font_for_text(box.text, box.family, box.weight, size)
    line_height = max(1, round(size * box.line_spacing))
    return FittedText(wrap(box.text, font, max_width), font, line_height)


def _fits_width(fitted: FittedText, box: TextBox, max_width: int) -> bool:
    return len(fitted.lines) <= box.max_lines and all(
        text_width(fitted.font, line) <= max_width for line in fitted.lines
    )


def _height(group: Sequence[FittedText]) -> int:
    return sum(len(f.lines) * f.line_height for f in group)


def fit_group(boxes: Sequence[TextBox], *, max_width: int, max_height: int) -> list[FittedText]:
    """Fit the texts, stacked, in a box of ``max_width`` by ``max_height``.

    Each text is wrapped to the width; while a text needs more than its ``max_lines``, a word is
    wider than the box or the stack is taller than it, every text that may shrink shrinks, all
    by the same factor (``SHRINK_STEP`` a try), each no further than its ``min_size``. One line
    of text is never shrunk for height alone. If the texts still do not fit at their minimum
    sizes, they are cut short: first to their ``max_lines``, then line by line from the text with
    the most lines until the stack fits (each keeps one), each cut text ending in an ellipsis.
    Lines of texts that fit are balanced (``balance``) when their ``TextBox`` asks for it.
    """
    if not boxes:
        return []
    lead = max(boxes, key=lambda b: (b.shrink, b.size))
    factor = 1.0
    while True:
        group = [_wrapped(box, box.size_at(factor), max_width) for box in boxes]
        lines = sum(len(f.lines) for f in group)
        fits = all(_fits_width(f, b, max_width) for f, b in zip(group, boxes, strict=True)) and (
            lines <= 1 or _height(group) <= max_height
        )
        at_floor = all(b.size_at(factor) == b.smallest() for b in boxes)
        if fits or at_floor:
            break
        lead_size = lead.size_at(factor)
        factor = min(factor * SHRINK_STEP, int(lead_size * SHRINK_STEP) / max(lead.size, 1))
    if fits:
        return [
            FittedText(balance(f.lines, f.font, max_width), f.font, f.line_height)
            if box.balance
            else f
            for f, box in zip(group, boxes, strict=True)
        ]
    return _cut(group, boxes, max_width, max_height)


def _cut(
    group: list[FittedText], boxes: Sequence[TextBox], max_width: int, max_height: int
) -> list[FittedText]:
    """The group cut short to fit: see ``fit_group``."""
    kept = [min(len(f.lines), b.max_lines) for f, b in zip(group, boxes, strict=True)]
    heights = [f.line_height for f in group]
    while sum(k * h for k, h in zip(kept, heights, strict=True)) > max_height and max(kept) > 1:
        most = max(kept)
        index = max(i for i, k in enumerate(kept) if k == most)
        kept[index] -= 1
    result = []
    for fitted, count in zip(group, kept, strict=True):
        font = fitted.font
        lines = [
            _ellipsize(line, font, max_width) if text_width(font, line) > max_width else line
            for line in fitted.lines[:count]
        ]
        if count < len(fitted.lines) and lines and not lines[-1].endswith(ELLIPSIS):
            lines[-1] = _ellipsize(lines[-1] + " ", font, max_width)
        result.append(FittedText(lines, font, fitted.line_height))
    return result


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
    min_size: int = MIN_FONT_SIZE,
    balance: bool = False,
) -> FittedText:
    """Wrap ``text`` in the box, shrinking the font down to ``min_size`` if needed: a group of
    one (``fit_group``); its lines are balanced only if ``balance`` asks for it."""
    box = TextBox(text, family, weight, size, max_lines, line_spacing, min_size, shrink, balance)
    (fitted,) = fit_group([box], max_width=max_width, max_height=max_height)
    return fitted
