"""The renderer registry, keyed by block type.

Every module in this package that defines ``RENDERER`` is a block type; adding a type means
adding one module. ``ContentParams`` is the tagged union of all their parameter models.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

import renderers
from renderers.base import Renderer, RendererParams


@lru_cache(maxsize=1)
def registry() -> dict[str, Renderer[Any]]:
    """Block type -> renderer, discovered from the modules of this package."""
    found: dict[str, Renderer[Any]] = {}
    for module_info in pkgutil.iter_modules(renderers.__path__):
        module = importlib.import_module(f"renderers.{module_info.name}")
        renderer = getattr(module, "RENDERER", None)
        if isinstance(renderer, Renderer):
            found[renderer.type] = renderer
    return dict(sorted(found.items()))


def renderer_for(block_type: str) -> Renderer[Any]:
    """The renderer of ``block_type``; KeyError if there is none."""
    return registry()[block_type]


def _content_union() -> Any:
    models = tuple(r.params_model for r in registry().values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    ContentParams = RendererParams
else:
    ContentParams = _content_union()
