"""The fonts shipped with Blanco (see ``fonts/LICENSE-*``), loaded once per size.

Coverage: ``has_glyphs`` tells whether a font maps every character of a text to a glyph, read
from the font file's Unicode ``cmap`` table (exact, no extra dependency), so a renderer can fall
back to DejaVu Sans (wide coverage: Latin, Greek, Cyrillic, Arabic, Hebrew…) for what a family
such as Inter lacks.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import ImageFont

FONT_DIR = Path(__file__).parent / "fonts"
Weight = Literal["regular", "bold"]
FONT_FILES: dict[tuple[str, Weight], str] = {
    ("dejavu-sans", "regular"): "DejaVuSans.ttf",
    ("dejavu-sans", "bold"): "DejaVuSans-Bold.ttf",
    ("inter", "regular"): "Inter-Regular.otf",
    ("inter", "bold"): "Inter-Bold.otf",
}
DEFAULT_FAMILY = "dejavu-sans"


@dataclass(frozen=True)
class FontLicense:
    """The licence a bundled family ships under, and the file in ``fonts/`` holding it."""

    name: str
    spdx: str
    file: str


FONT_LICENSES: dict[str, FontLicense] = {
    "dejavu-sans": FontLicense(
        "Bitstream Vera Fonts License (DejaVu changes: public domain)",
        "Bitstream-Vera",
        "LICENSE-DejaVu.txt",
    ),
    "inter": FontLicense("SIL Open Font License 1.1", "OFL-1.1", "LICENSE-Inter.txt"),
}


def families() -> list[dict[str, object]]:
    """The bundled font families with their weights and licences, for the admin API."""
    result: dict[str, list[str]] = {}
    for family, weight in FONT_FILES:
        result.setdefault(family, []).append(weight)
    return [
        {
            "family": family,
            "weights": weights,
            "default": family == DEFAULT_FAMILY,
            "license": FONT_LICENSES[family].name,
            "license_spdx": FONT_LICENSES[family].spdx,
            "license_file": FONT_LICENSES[family].file,
        }
        for family, weights in result.items()
    ]


@lru_cache(maxsize=256)
def load_font(family: str, weight: Weight, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType font of the bundled family, weight and pixel size."""
    filename = FONT_FILES.get((family, weight)) or FONT_FILES[(DEFAULT_FAMILY, weight)]
    return ImageFont.truetype(str(FONT_DIR / filename), size=size)


# glyph coverage


def _ignorable(char: str) -> bool:
    """Characters that draw nothing: controls, format characters, variation selectors."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Cc", "Cf")
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
    )


def missing_glyphs(font: ImageFont.FreeTypeFont, text: str) -> str:
    """The distinct characters of ``text`` that ``font`` has no glyph for, in order."""
    if not isinstance(font.path, str | Path):
        raise ValueError("glyph coverage needs a font loaded from a file path")
    covered = covered_code_points(str(font.path), font.index)
    missing = dict.fromkeys(c for c in text if ord(c) not in covered and not _ignorable(c))
    return "".join(missing)


def has_glyphs(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether ``font`` draws every character of ``text`` (no "tofu" boxes)."""
    return not missing_glyphs(font, text)


def font_for_text(text: str, family: str, weight: Weight, size: int) -> ImageFont.FreeTypeFont:
    """The family's font if it covers all of ``text``, else the default family's.

    Falling back for the whole text keeps shaping and right-to-left ordering intact.
    """
    font = load_font(family, weight, size)
    if family == DEFAULT_FAMILY or has_glyphs(font, text):
        return font
    fallback = load_font(DEFAULT_FAMILY, weight, size)
    return fallback if has_glyphs(fallback, text) else font


def font_runs(
    text: str, family: str, weight: Weight, size: int
) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """``text`` cut into runs, each with the font to draw it in: the family, else the default.

    For mixed left-to-right text (a Latin line with a symbol Inter lacks); right-to-left text
    is better drawn whole with ``font_for_text``. Characters neither font has stay with the
    family's font, as do spaces and invisible characters.
    """
    primary = load_font(family, weight, size)
    fallback = load_font(DEFAULT_FAMILY, weight, size)
    runs: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for char in text:
        font = primary
        if (
            fallback is not primary
            and not _ignorable(char)
            and not char.isspace()
            and not has_glyphs(primary, char)
            and has_glyphs(fallback, char)
        ):
            font = fallback
        if runs and (runs[-1][1] is font or char.isspace() or _ignorable(char)):
            runs[-1] = (runs[-1][0] + char, runs[-1][1])
        else:
            runs.append((char, font))
    return runs


@lru_cache(maxsize=32)
def covered_code_points(path: str, index: int = 0) -> frozenset[int]:
    """Code points the font file maps to a real glyph, from its Unicode ``cmap`` subtables."""
    data = Path(path).read_bytes()
    base = 0
    if data[:4] == b"ttcf":  # a collection: the offset table of font ``index``
        (base,) = struct.unpack_from(">I", data, 12 + 4 * index)
    (num_tables,) = struct.unpack_from(">H", data, base + 4)
    cmap = None
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
        if tag == b"cmap":
            cmap = offset
    if cmap is None:
        return frozenset()
    covered: set[int] = set()
    (count,) = struct.unpack_from(">H", data, cmap + 2)
    for i in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        if platform == 0 or (platform == 3 and encoding in (1, 10)):  # Unicode subtables
            covered.update(_subtable_code_points(data, cmap + offset))
    return frozenset(covered)


def _subtable_code_points(data: bytes, at: int) -> Iterator[int]:
    """Code points with a non-zero glyph id in a format 4 or 12 cmap subtable."""
    (fmt,) = struct.unpack_from(">H", data, at)
    if fmt == 4:
        seg_count = struct.unpack_from(">H", data, at + 6)[0] // 2
        ends = at + 14
        starts = ends + 2 * seg_count + 2
        deltas = starts + 2 * seg_count
        range_offsets = deltas + 2 * seg_count
        for seg in range(seg_count):
            (end,) = struct.unpack_from(">H", data, ends + 2 * seg)
            (start,) = struct.unpack_from(">H", data, starts + 2 * seg)
            (delta,) = struct.unpack_from(">h", data, deltas + 2 * seg)
            range_at = range_offsets + 2 * seg
            (range_offset,) = struct.unpack_from(">H", data, range_at)
            for code in range(start, min(end, 0xFFFE) + 1):
                if range_offset == 0:
                    glyph = (code + delta) & 0xFFFF
                else:
                    (glyph,) = struct.unpack_from(
                        ">H", data, range_at + range_offset + 2 * (code - start)
                    )
                    glyph = (glyph + delta) & 0xFFFF if glyph else 0
                if glyph:
                    yield code
    elif fmt == 12:
        (groups,) = struct.unpack_from(">I", data, at + 12)
        for group in range(groups):
            start, end, first_glyph = struct.unpack_from(">III", data, at + 16 + 12 * group)
            yield from range(start + (first_glyph == 0), end + 1)
