"""The renderer contract: a parameter model plus a pure function from inputs to an image.

A renderer module defines a pydantic ``Params`` model (with a literal ``type`` field that names
the block type) and a ``Renderer`` subclass, exposed as the module-level ``RENDERER``. Rendering
must be a pure function of (params, fields, size, moment), which is what makes caching by a hash
of those inputs safe.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from PIL import Image
from pydantic import BaseModel, ConfigDict

PNG_COMPRESS_LEVEL = 1


class RendererParams(BaseModel):
    """Base of every renderer's parameter model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


@dataclass(frozen=True)
class RenderRequest:
    """Everything a render depends on. Equal requests give equal images."""

    width: int
    height: int
    fields: Mapping[str, Any] = field(default_factory=dict)
    moment: dt.datetime | None = None
    max_text_length: int = 200


@dataclass(frozen=True)
class RenderedImage:
    """Encoded image bytes with their media type."""

    body: bytes
    media_type: str


P = TypeVar("P", bound=RendererParams)


class Renderer(ABC, Generic[P]):
    """Turns validated params and a request into an image."""

    type: ClassVar[str]
    params_model: builtins.type[P]

    @abstractmethod
    def render(self, params: P, request: RenderRequest) -> Image.Image:
        """Draw the image; must not do I/O and must not depend on anything but its inputs."""

    def moment(self, params: P, now: dt.datetime) -> dt.datetime | None:
        """The time the output depends on, rounded to its bucket (None: time-independent)."""
        return None

    def fields_used(self, params: P) -> frozenset[str] | None:
        """Profile fields the output depends on (None: unknown, so every field counts)."""
        return None

    def encode(self, image: Image.Image) -> RenderedImage:
        """Encode as PNG, fast compression; palette images stay palette."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return RenderedImage(buffer.getvalue(), "image/png")

    def cache_key(self, params: P, request: RenderRequest) -> str:
        """A hash of every input of the render."""
        used = self.fields_used(params)
        fields = {k: v for k, v in request.fields.items() if used is None or k in used}
        material = json.dumps(
            [
                self.type,
                params.model_dump(mode="json"),
                request.width,
                request.height,
                fields,
                request.moment.isoformat() if request.moment else None,
                request.max_text_length,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(material.encode()).hexdigest()
