"""The renderer contract: a parameter model plus a pure function from inputs to an image.

A renderer module defines a pydantic params model (subclass of ``RendererParams`` with a literal
``type`` field naming the block type) and a ``Renderer`` subclass, exposed as the module-level
``RENDERER``; ``renderers.registry`` discovers it. Rendering is a pure function of
(params, request) — fields, size, scale, moment — which is what makes caching by a hash of the
inputs safe.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import io
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from renderers.png import drawn_png
from renderers.templating import LIVE_FIELD, live_values_used

log = logging.getLogger(__name__)

PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 85
WEBP_QUALITY = 85
QUALITY_STEP = 10
QUALITY_FLOOR = 45
"""JPEG and WebP start at their quality above and step down by ``QUALITY_STEP`` while over the
byte budget, to this floor at the lowest."""
BYTE_BUDGET_2X = 100_000
"""Default byte budget of a still image at 2×; at ``dpr`` it is ``budget × dpr² / 4``."""
PHOTO_SAMPLE = 128
"""Photographs are told by the distinct colours among at most this many × this many pixels…"""
PHOTO_COLOURS = 1024
"""…of which a photograph has more than this many; drawn shapes, text and flat pictures fewer."""
OutputFormat = Literal["auto", "png", "jpeg", "gif", "webp"]
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


class ContentUnavailable(Exception):
    """The render needs data this recipient lacks (e.g. a deadline field): serve the fallback.

    Expected, so it is logged without a stack trace.
    """


class RendererParams(BaseModel):
    """Base of every renderer's parameter model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    output: OutputFormat = "auto"
    """``auto``: WebP when the client accepts it, else JPEG for a photograph (without
    transparency), else PNG (animated types: GIF)."""
    byte_budget: int = Field(
        BYTE_BUDGET_2X,
        ge=1_000,
        le=10_000_000,
        description="Bytes a still JPEG or WebP should stay under at 2× (dpr² / 4 times this "
        "at other dprs): its quality steps down to fit, to a floor.",
    )


@dataclass(frozen=True)
class RenderRequest:
    """Everything a render depends on. Equal requests give equal images.

    ``width``/``height`` are output pixels (already multiplied by ``scale``, the device pixel
    ratio); renderers multiply their own sizes (fonts, padding) by ``scale``.
    """

    width: int
    height: int
    fields: Mapping[str, Any] = field(default_factory=dict)
    moment: dt.datetime | None = None
    scale: int = 1
    first_open: dt.datetime | None = None
    max_text_length: int = 200
    accepts_webp: bool = False
    assets: Mapping[str, Image.Image] = field(default_factory=dict)
    """Decoded uploaded images by asset id, as named by ``Renderer.assets_used``."""


@dataclass(frozen=True)
class RenderedImage:
    """Encoded image bytes with their media type."""

    body: bytes
    media_type: str


P = TypeVar("P", bound=RendererParams)
T = TypeVar("T")


def choose_format(output: OutputFormat, accepts_webp: bool, animated: bool) -> str:
    """The concrete format for ``output`` and the client's ``Accept`` (before ``still_format``
    looks at a still image's pixels)."""
    if output != "auto":
        return output
    if animated:
        return "gif"
    return "webp" if accepts_webp else "png"


def budget_at(byte_budget: int, scale: int) -> int:
    """The byte budget at device pixel ratio ``scale`` of one given at 2× (it scales with the
    pixels: a quarter at 1×, 2.25 times at 3×)."""
    return byte_budget * scale * scale // 4


def has_transparency(image: Image.Image) -> bool:
    """Whether any pixel of ``image`` is not fully opaque."""
    if image.mode not in ("RGBA", "LA", "PA"):
        if "transparency" not in image.info:
            return False
        image = image.convert("RGBA")
    lowest, _ = cast(tuple[int, int], image.getchannel("A").getextrema())
    return lowest < 255


def photographic(image: Image.Image) -> bool:
    """Whether ``image`` looks like a photograph: more than ``PHOTO_COLOURS`` distinct colours
    among a grid of at most ``PHOTO_SAMPLE``² of its pixels (nearest-neighbour sampling adds no
    colours of its own). Under 0.1 ms whatever the image's size."""
    size = (min(image.width, PHOTO_SAMPLE), min(image.height, PHOTO_SAMPLE))
    sample = image.resize(size, Image.Resampling.NEAREST)
    if sample.mode != "RGB":
        sample = sample.convert("RGB")
    return sample.getcolors(PHOTO_COLOURS) is None


def still_format(
    image: Image.Image, output: OutputFormat, accepts_webp: bool, *, drawn: bool
) -> str:
    """The format of a still image: ``choose_format``, except that ``auto`` without WebP is
    JPEG for a photograph without transparency. Only an image with an uploaded picture in it
    (not ``drawn``) is looked at, and only when it is rendered (never on a cache hit)."""
    fmt = choose_format(output, accepts_webp, animated=False)
    if output != "auto" or fmt != "png" or drawn:
        return fmt
    if photographic(image) and not has_transparency(image):
        return "jpeg"
    return fmt


def encode_image(
    image: Image.Image, fmt: str, *, drawn: bool = False, budget: int | None = None
) -> RenderedImage:
    """Encode one still image; fast PNG compression, never level 9. A ``drawn`` image (shapes
    and text only, no uploaded picture) is written as PNG without row filters
    (``renderers.png``): faster, and as small. JPEG is progressive with 4:2:0 chroma
    subsampling. A JPEG or WebP over ``budget`` bytes is encoded again at lower qualities, down
    to ``QUALITY_FLOOR``; whatever that gives is the answer (logged when still over)."""
    if fmt == "png" and drawn:
        body = drawn_png(image)
    elif fmt in ("jpeg", "webp"):
        body = _lossy(image, fmt, budget)
    else:
        buffer = io.BytesIO()
        if fmt == "png":
            image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        elif fmt == "gif":
            still = image if image.mode == "P" else image.convert("RGB").quantize(colors=256)
            still.save(buffer, format="GIF")
        else:
            raise ValueError(f"unknown image format {fmt!r}")
        body = buffer.getvalue()
    if budget is not None and len(body) > budget:
        log.info("%s image of %d bytes is over its budget of %d bytes", fmt, len(body), budget)
    return RenderedImage(body, MEDIA_TYPES[fmt])


def _lossy(image: Image.Image, fmt: str, budget: int | None) -> bytes:
    """JPEG or WebP at the highest quality (stepping down from the default) that fits."""
    if fmt == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    quality = JPEG_QUALITY if fmt == "jpeg" else WEBP_QUALITY
    while True:
        buffer = io.BytesIO()
        if fmt == "jpeg":
            image.save(
                buffer, format="JPEG", quality=quality, progressive=True, subsampling="4:2:0"
            )
        else:
            image.save(buffer, format="WEBP", quality=quality, method=2)
        if budget is None or buffer.tell() <= budget or quality <= QUALITY_FLOOR:
            return buffer.getvalue()
        quality = max(QUALITY_FLOOR, quality - QUALITY_STEP)


class Renderer(ABC, Generic[P]):
    """Turns validated params and a request into an encoded image."""

    type: ClassVar[str]
    params_model: builtins.type[P]
    animated: ClassVar[bool] = False

    @abstractmethod
    def render(self, params: P, request: RenderRequest) -> Image.Image:
        """Draw the (first frame of the) image; no I/O, nothing but the inputs."""

    def render_encoded(self, params: P, request: RenderRequest) -> RenderedImage:
        """Render and encode in the negotiated format (animated renderers override this)."""
        image = self.render(params, request)
        drawn = self.drawn(params)
        if self.animated:  # an animated type's still (its own render_encoded draws the frames)
            fmt = choose_format(params.output, request.accepts_webp, animated=True)
        else:
            fmt = still_format(image, params.output, request.accepts_webp, drawn=drawn)
        budget = budget_at(params.byte_budget, request.scale)
        return encode_image(image, fmt, drawn=drawn, budget=budget)

    def drawn(self, params: P) -> bool:
        """Whether the output is drawn from shapes and text only (no uploaded picture)."""
        return not self.assets_used(params)

    def moment(self, params: P, now: dt.datetime) -> dt.datetime | None:
        """The time the output depends on, rounded to its bucket (None: time-independent)."""
        return None

    def assets_used(self, params: P) -> frozenset[str]:
        """Ids of the uploaded images the render draws (the server loads them)."""
        return frozenset()

    def fields_used(self, params: P) -> frozenset[str] | None:
        """Profile fields the output depends on (None: unknown, so every field counts)."""
        return None

    def fields_of(self, params: P) -> tuple[str, ...] | None:
        """``fields_used``, sorted, worked out once per params object (None: unknown)."""

        def ordered() -> tuple[str, ...] | None:
            used = self.fields_used(params)
            return None if used is None else tuple(sorted(used))

        found: tuple[str, ...] | None = _memo(params, "_fields_of", ordered)
        return found

    def params_material(self, params: P) -> tuple[str, list[str]]:
        """The params as canonical JSON, and every text in them (templates among them): worked
        out once per params object (params are frozen, and every open of a block hashes them)."""

        def material() -> tuple[str, list[str]]:
            dumped = params.model_dump(mode="json")
            return json.dumps(dumped, sort_keys=True, default=str), _texts(dumped)

        found: tuple[str, list[str]] = _memo(params, "_cache_params", material)
        return found

    def cache_material(self, params: P, request: RenderRequest) -> list[Any]:
        """Everything besides the params the output depends on, as JSON-able values."""
        used = self.fields_used(params)
        fields = {k: v for k, v in request.fields.items() if used is None or k in used}
        if isinstance(fields.get(LIVE_FIELD), Mapping):
            fields[LIVE_FIELD] = live_values_used(
                self.params_material(params)[1], fields[LIVE_FIELD]
            )
        return [
            request.width,
            request.height,
            request.scale,
            fields,
            request.moment.isoformat() if request.moment else None,
            request.max_text_length,
            # "png" for auto without WebP also covers the JPEG a photograph becomes
            # (``still_format``): decided from the pixels, so equal inputs, equal format
            choose_format(params.output, request.accepts_webp, self.animated),
        ]

    def cache_key(self, params: P, request: RenderRequest) -> str:
        """A hash of every input of the render: the type, the params and the rest."""
        rest = json.dumps(self.cache_material(params, request), sort_keys=True, default=str)
        digest = self._params_digest(params).copy()
        digest.update(rest.encode())
        key: str = digest.hexdigest()
        return key

    def _params_digest(self, params: P) -> Any:
        """SHA-256 fed with the type and the params (the start of every cache key of these
        params): hashed once per params object, copied for each key."""
        return _memo(
            params,
            "_cache_digest",
            lambda: hashlib.sha256(
                f"{self.type}\x00{self.params_material(params)[0]}\x00".encode()
            ),
        )


def _memo(params: Any, name: str, compute: Callable[[], T]) -> T:
    """``compute()``, kept in the params object under ``name`` (params are frozen; a cache is
    not a field, so it bypasses that). Each entry carries the id of the object it was worked
    out for: ``model_copy`` copies the object's dict, and a copy with other values must not
    inherit its original's cache key."""
    entry = params.__dict__.get(name)
    if entry is not None and entry[0] == id(params):
        return cast(T, entry[1])
    value = compute()
    params.__dict__[name] = (id(params), value)
    return value


def _texts(node: Any) -> list[str]:
    """Every string inside dumped params: the templates are among them (so the live values
    any text names are in the cache key, and a change to another value leaves it alone)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    return []
