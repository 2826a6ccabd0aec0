"""Placeholder filling: sandboxed Jinja2 templates over profile fields, with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Compile once; raises jinja2.TemplateError on bad syntax."""
    return _environment().from_string(source)


def template_error(source: str) -> str | None:
    """A message if ``source`` is not a valid template, else None (for validation)."""
    try:
        compile_template(source)
    except TemplateError as exc:
        return f"invalid template: {exc.message}"
    return None


@lru_cache(maxsize=4096)
def placeholders(source: str) -> frozenset[str]:
    """Names of the variables a template reads."""
    return frozenset(meta.find_undeclared_variables(_environment().parse(source)))


def fill(
    source: str, fields: Mapping[str, Any], defaults: Mapping[str, str], max_length: int
) -> str:
    """Render ``source``; missing or empty fields take their default; cap the result length."""
    context = dict(defaults)
    context.update({k: v for k, v in fields.items() if v is not None and v != ""})
    text = compile_template(source).render(context)
    return " ".join(text.split())[:max_length]
