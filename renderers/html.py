"""Live HTML blocks: HTML rendered at open for the places that fetch HTML (the web view, AMP).

A variant, a fallback or a newsletter slot may carry ``html``: a template from
``templates/blocks/`` or inline Jinja2 source written by an admin. Both run in a sandboxed,
autoescaping environment over the same fields as the image (profile, item, defaults), so a
profile value can never inject markup. This module draws no image, so it defines no
``RENDERER``: the image of the same content comes from its image renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, model_validator

BLOCK_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "blocks"


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The sandboxed, autoescaping environment live HTML renders in."""
    return SandboxedEnvironment(loader=FileSystemLoader(BLOCK_TEMPLATES), autoescape=True)


@lru_cache(maxsize=1024)
def _inline(source: str) -> Template:
    return environment().from_string(source)


def template_names() -> list[str]:
    """The bundled block templates."""
    return sorted(p.name for p in BLOCK_TEMPLATES.glob("*.html"))


class HtmlContent(BaseModel):
    """Live HTML: a bundled template (``templates/blocks/<name>``) or inline source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}\.html$", description="A bundled template."
    )
    source: str | None = Field(
        None, max_length=20_000, description="Inline Jinja2, autoescaped and sandboxed."
    )
    defaults: dict[str, str] = Field(
        default_factory=dict, description="Value per field when the data lacks it."
    )

    @model_validator(mode="after")
    def _one_source(self) -> HtmlContent:
        if (self.template is None) == (self.source is None):
            raise ValueError("give either `template` or `source`")
        if self.template is not None and self.template not in template_names():
            raise ValueError(f"unknown template {self.template!r}; bundled: {template_names()}")
        if self.source is not None:
            try:
                _inline(self.source)
            except TemplateError as exc:
                raise ValueError(f"invalid template: {exc.message}") from None
        return self

    def render(self, fields: Mapping[str, Any]) -> Markup:
        """The HTML for ``fields``; missing fields take their default, else render empty.

        Raises jinja2 errors (a template that fails on this data); callers fall back."""
        context = {**self.defaults, **{k: v for k, v in fields.items() if v not in (None, "")}}
        template = (
            environment().get_template(self.template)
            if self.template
            else _inline(self.source or "")
        )
        return Markup(template.render(context))  # noqa: S704 - the environment autoescapes
