"""What the open-time routes answer: images with their cache tags, and how the client wants them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from renderers.base import RenderedImage
from renderers.fallback import TRANSPARENT_PNG

MAX_SCALE = 3
SKIPPED = "redis: circuit open"
"""The fallback reason of a request that skipped Redis after a recent failure."""


@dataclass(frozen=True)
class ImageOptions:
    """How the client wants the image: device pixel ratio and whether it takes WebP."""

    scale: int = 1
    accepts_webp: bool = False

    @classmethod
    def from_request(cls, dpr: str | None, accept: str | None) -> ImageOptions:
        """Options from the ``dpr`` query parameter and the ``Accept`` header (lenient)."""
        scale = int(dpr) if dpr and dpr.isascii() and dpr.isdigit() and len(dpr) < 3 else 1
        return cls(min(max(scale, 1), MAX_SCALE), "image/webp" in (accept or ""))


PLAIN = ImageOptions()


@dataclass(frozen=True)
class ImageAnswer:
    """What the image route sends."""

    image: RenderedImage
    etag: str
    personalised: bool
    fallback_reason: str | None = None


@dataclass(frozen=True)
class Redirect:
    """What a click route sends: where to, and the attribution token of a person's click (also
    in the URL), if it has one."""

    url: str
    click_token: str | None = None


def etag_of(data: bytes | str) -> str:
    """A strong ETag for ``data``."""
    raw = data if isinstance(data, bytes) else data.encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


LAST_RESORT = ImageAnswer(
    RenderedImage(TRANSPARENT_PNG, "image/png"), etag_of(TRANSPARENT_PNG), False, "last resort"
)
"""A 1×1 transparent PNG: when not even the block's fallback can be drawn."""
