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
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from PIL import Image
from pydantic import BaseModel, ConfigDict

from renderers.png import drawn_png
from renderers.templating import LIVE_FIELD, live_values_used

PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 85
WEBP_QUALITY = 85
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
    """``auto``: WebP when the client accepts it, else PNG (animated types: GIF)."""


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
    """The concrete format for ``output`` and the client's ``Accept``."""
    if output != "auto":
        return output
    if animated:
        return "gif"
    return "webp" if accepts_webp else "png"


def encode_image(image: Image.Image, fmt: str, *, drawn: bool = False) -> RenderedImage:
    """Encode one still image; fast PNG compression, never level 9. A ``drawn`` image (shapes
    and text only, no uploaded picture) is written as PNG without row filters
    (``renderers.png``): faster, and as small."""
    if fmt == "png" and drawn:
        return RenderedImage(drawn_png(image), MEDIA_TYPES[fmt])
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    elif fmt == "webp":
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=2)
    elif fmt == "gif":
        still = image if image.mode == "P" else image.convert("RGB").quantize(colors=256)
        still.save(buffer, format="GIF")
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return RenderedImage(buffer.getvalue(), MEDIA_TYPES[fmt])


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
        fmt = choose_format(params.output, request.accepts_webp, self.animated)
        return encode_image(self.render(params, request), fmt, drawn=self.drawn(params))

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
