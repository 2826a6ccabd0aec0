"""Comparing rendered images with reference PNGs stored next to the tests.

Run the tests with ``BLANCO_REGEN_REFERENCES=1`` to (re)write the references from the current
renders; look at the new files before committing them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

REFERENCE_DIR = Path(__file__).parent / "reference"
REGENERATE_VARIABLE = "BLANCO_REGEN_REFERENCES"
PIXEL_THRESHOLD = 48
"""A pixel differs when one of its channels is off by more than this (anti-aliasing noise
across FreeType versions stays below it)."""
DEFAULT_TOLERANCE = 0.002
"""Share of pixels that may differ: 0.2%, e.g. 240 pixels of a 600×200 image."""


def differing_share(image: Image.Image, reference: Image.Image) -> float:
    """The share of pixels of two same-sized images that differ beyond PIXEL_THRESHOLD."""
    difference = ImageChops.difference(image.convert("RGB"), reference.convert("RGB"))
    strongest = difference.getchannel(0)
    for channel in (1, 2):
        strongest = ImageChops.lighter(strongest, difference.getchannel(channel))
    histogram = strongest.histogram()
    return sum(histogram[PIXEL_THRESHOLD + 1 :]) / (image.width * image.height)


def assert_matches_reference(
    image: Image.Image, name: str, tolerance: float = DEFAULT_TOLERANCE
) -> None:
    """Assert ``image`` matches ``reference/<name>.png``: same size, few differing pixels.

    On a mismatch the render is saved to the temporary directory for a look.
    """
    path = REFERENCE_DIR / f"{name}.png"
    if os.environ.get(REGENERATE_VARIABLE) == "1":
        REFERENCE_DIR.mkdir(exist_ok=True)
        image.save(path, format="PNG", optimize=True)
        return
    assert path.exists(), f"no reference {path.name}; run with {REGENERATE_VARIABLE}=1"
    with Image.open(path) as stored:
        reference = stored.convert("RGB")
    if image.size == reference.size:
        share = differing_share(image, reference)
        if share <= tolerance:
            return
        problem = f"{share:.2%} of pixels differ (tolerance {tolerance:.2%})"
    else:
        problem = f"size {image.size} != reference size {reference.size}"
    actual = Path(tempfile.gettempdir()) / "blanco-reference-failures" / f"{name}.png"
    actual.parent.mkdir(parents=True, exist_ok=True)
    image.save(actual, format="PNG")
    raise AssertionError(f"{name}: {problem}; the render is at {actual}")
