"""Checking an uploaded image before it is stored: a real, intact image of an allowed type.

Pure: bytes in, facts (or ``InvalidInput``) out. The type comes from the content, as Pillow
recognises it, never from a file name. The file's structure is verified and every frame is
decoded, so a truncated or corrupt file is refused here rather than failing later at render
time; the pixel budget is checked before any frame is decoded, so a small file that declares
huge dimensions never expands in memory.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import NoReturn

from PIL import Image, ImageSequence, UnidentifiedImageError

from models.errors import FieldError, InvalidInput

MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a JPEG with extra frames, as phone cameras write them
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
"""Pillow format name -> media type, for the formats an upload may have."""

ALLOWED = "PNG, JPEG, GIF or WebP"


@dataclass(frozen=True)
class ImageLimits:
    """How large an upload may be (``BLANCO_ASSET_MAX_BYTES``, ``BLANCO_ASSET_MAX_PIXELS``)."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class ImageFacts:
    """What an accepted image is."""

    media_type: str
    width: int
    height: int
    frames: int


class _Refused(Exception):
    """A reason to refuse the image; ``validate_image`` turns it into InvalidInput."""


def validate_image(data: bytes, limits: ImageLimits, field: str = "data") -> ImageFacts:
    """The facts of ``data`` if it is an allowed, intact image within ``limits``.

    Otherwise InvalidInput (422) whose error points at ``field``.
    """
    try:
        if not data:
            raise _Refused("is empty; upload an image file")
        if len(data) > limits.max_bytes:
            raise _Refused(f"is larger than the {limits.max_bytes} bytes allowed")
        # Pillow's own bomb check warns past Image.MAX_IMAGE_PIXELS; make that a refusal too.
        # (catch_warnings is process-wide: at worst another thread also sees the warning as an
        # error for a moment, which is what we want anyway.)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _inspect(data, limits)
    except _Refused as exc:
        _refuse(field, str(exc))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        _refuse(field, "declares more pixels than allowed (a decompression bomb?)")
    except UnidentifiedImageError:
        _refuse(field, f"is not an image Blanco recognises; upload {ALLOWED}")
    except Exception:  # anything else Pillow raises on damaged input
        _refuse(field, "could not be decoded completely: the file is damaged or truncated")


def _inspect(data: bytes, limits: ImageLimits) -> ImageFacts:
    with Image.open(io.BytesIO(data)) as image:
        media_type = MEDIA_TYPES.get(image.format or "")
        if media_type is None:
            raise _Refused(
                f"is {image.format or 'an unknown format'}, not an allowed type: {ALLOWED}"
            )
        width, height = image.size
        image.verify()  # structure and checksums (PNG: every chunk's CRC, IEND present)
    with Image.open(io.BytesIO(data)) as image:  # verify() leaves the image unusable
        pixels = frames = 0
        for frame in ImageSequence.Iterator(image):
            pixels += frame.size[0] * frame.size[1]
            if pixels > limits.max_pixels:
                raise _Refused(
                    f"has more than the {limits.max_pixels} pixels allowed "
                    f"({width}×{height} per frame)"
                )
            frame.load()
            frames += 1
    return ImageFacts(media_type, width, height, frames)


def _refuse(field: str, reason: str) -> NoReturn:
    raise InvalidInput(f"the image was refused: it {reason}", [FieldError((field,), reason)])
