"""The one comparison of rendered images with the reference PNGs stored next to the tests.

Two builds of Pillow/FreeType (or Chromium) anti-alias glyph edges differently and may place a
glyph up to a pixel apart, so an exact comparison is too strict; a share of differing pixels is
too lax (a changed letter in a headline, "Anna" → "Anne", is 0.15% of a 600×200 banner). So a
pixel counts as *unexplained* when no pixel of the other image within one pixel of it (its 3×3
neighbourhood) has its colour, give or take ``COLOR_THRESHOLD`` per channel; edge jitter and
sub-pixel shifts always find such a neighbour, a changed glyph does not. Both directions count
(ink added and ink removed), and at most ``MAX_UNEXPLAINED_PIXELS`` may be unexplained.

Run the tests with ``BLANCO_REGEN_REFERENCES=1`` to (re)write the references from the current
renders; look at the new files before committing them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops

from tests.renderers.pixels import channel_difference

REFERENCE_DIR = Path(__file__).parent / "reference"
REGENERATE_VARIABLE = "BLANCO_REGEN_REFERENCES"
COLOR_THRESHOLD = 32
"""Two colours match when no RGB channel differs by more than this."""
NEIGHBOURHOOD = 1
"""How far (in pixels, each way) a pixel may have moved and still be explained."""
MAX_UNEXPLAINED_PIXELS = 4
"""Unexplained pixels allowed in a whole image: a few strays, never a glyph (a changed letter
at 14 px already leaves about 15)."""


@dataclass(frozen=True)
class Comparison:
    """How an image compares with its reference."""

    unexplained: Image.Image
    """An L mask, 255 at each pixel of either image that nothing near it in the other explains."""

    @property
    def unexplained_count(self) -> int:
        """How many pixels are unexplained."""
        return self.unexplained.histogram()[255]

    @property
    def matches(self) -> bool:
        """Whether the images are the same within the tolerance."""
        return self.unexplained_count <= MAX_UNEXPLAINED_PIXELS


def _shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    """``image`` moved by (dx, dy), its edge rows and columns repeated into the gap."""
    moved = image.copy()
    moved.paste(image, (dx, dy))
    return moved


def _unexplained_in(image: Image.Image, other: Image.Image) -> Image.Image:
    """A mask of the pixels of ``image`` whose colour no pixel near them in ``other`` has."""
    nearest: Image.Image | None = None
    for dx in range(-NEIGHBOURHOOD, NEIGHBOURHOOD + 1):
        for dy in range(-NEIGHBOURHOOD, NEIGHBOURHOOD + 1):
            difference = channel_difference(image, _shifted(other, dx, dy))
            nearest = difference if nearest is None else ImageChops.darker(nearest, difference)
    assert nearest is not None
    return nearest.point(lambda v: 255 if v > COLOR_THRESHOLD else 0)


def compare(image: Image.Image, reference: Image.Image) -> Comparison:
    """Compare two same-sized images, both ways (ink added and ink removed)."""
    assert image.size == reference.size, f"size {image.size} != {reference.size}"
    rgb, reference_rgb = image.convert("RGB"), reference.convert("RGB")
    return Comparison(
        ImageChops.lighter(_unexplained_in(rgb, reference_rgb), _unexplained_in(reference_rgb, rgb))
    )


def assert_matches_reference(image: Image.Image, name: str) -> None:
    """Assert ``image`` matches ``reference/<name>.png``: same size, nothing unexplained.

    On a mismatch the render and the mask of unexplained pixels are saved to the temporary
    directory for a look.
    """
    path = REFERENCE_DIR / f"{name}.png"
    if os.environ.get(REGENERATE_VARIABLE) == "1":
        REFERENCE_DIR.mkdir(exist_ok=True)
        image.save(path, format="PNG", optimize=True)
        return
    assert path.exists(), f"no reference {path.name}; run with {REGENERATE_VARIABLE}=1"
    with Image.open(path) as stored:
        reference = stored.convert("RGB")
    failures = Path(tempfile.gettempdir()) / "blanco-reference-failures"
    if image.size != reference.size:
        problem = f"size {image.size} != reference size {reference.size}"
    else:
        comparison = compare(image, reference)
        if comparison.matches:
            return
        problem = (
            f"{comparison.unexplained_count} pixels unexplained "
            f"(at most {MAX_UNEXPLAINED_PIXELS} allowed)"
        )
        failures.mkdir(parents=True, exist_ok=True)
        comparison.unexplained.save(failures / f"{name}-unexplained.png", format="PNG")
    failures.mkdir(parents=True, exist_ok=True)
    image.save(failures / f"{name}.png", format="PNG")
    raise AssertionError(f"{name}: {problem}; the render and its mask are in {failures}")
