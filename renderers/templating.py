"""Placeholder filling: sandboxed Jinja2 templates over profile fields, with defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError, meta, nodes
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


LIVE_FIELD = "live"
"""The field that holds the fresh live sources: ``{{ live.<source>.<value> }}``."""


LivePath = tuple[str, str | None]
"""A live value a template reads, ``(source, value)``; ``(source, None)``: the whole source."""


@lru_cache(maxsize=4096)
def live_reads(source: str) -> frozenset[LivePath] | None:
    """The live values a template reads as ``live.<source>.<value>`` (or with ``[…]`` and
    constant names); None when it reads ``live`` any other way (the whole mapping, a computed
    source name, a mapping method such as ``live.items()``)."""
    if LIVE_FIELD not in placeholders(source):
        return frozenset()
    tree = _environment().parse(source)
    below: dict[int, str | None] = {}  # id of a node -> the constant name read from it
    for attr in tree.find_all(nodes.Getattr):
        below[id(attr.node)] = attr.attr
    for item in tree.find_all(nodes.Getitem):
        below[id(item.node)] = _constant_name(item.arg)
    reads: list[tuple[nodes.Node, str | None]] = [
        (n, n.attr) for n in tree.find_all(nodes.Getattr) if _is_live(n.node)
    ]
    reads += [(n, _constant_name(n.arg)) for n in tree.find_all(nodes.Getitem) if _is_live(n.node)]
    uses = [n for n in tree.find_all(nodes.Name) if n.name == LIVE_FIELD and n.ctx == "load"]
    if len(reads) != len(uses) or any(_not_a_key(name) for _, name in reads):
        return None
    paths: set[LivePath] = set()
    for node, name in reads:
        value = below.get(id(node))
        paths.add((str(name), None if _not_a_key(value) else value))
    return frozenset(paths)


def _is_live(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == LIVE_FIELD


def _constant_name(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _not_a_key(name: str | None) -> bool:
    """Whether reading ``name`` from a mapping may read more than one key (or none known)."""
    return name is None or hasattr(dict, name)


def live_reads_of(sources: Iterable[str]) -> frozenset[LivePath] | None:
    """The live values any of ``sources`` (templates, or any text) reads; None: unknown."""
    found: set[LivePath] = set()
    for source in sources:
        if LIVE_FIELD not in source:
            continue
        try:
            paths = live_reads(source)
        except TemplateError:
            continue  # not a template: nothing is read
        if paths is None:
            return None
        found |= paths
    return frozenset(found)


def live_values_used(
    sources: Iterable[str], live: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The part of ``live`` that ``sources`` read (all of it if that is unknown): what a
    render's cache key must hold, and no more."""
    paths = live_reads_of(sources)
    if paths is None:
        return {name: dict(values) for name, values in live.items()}
    whole = {name for name, value in paths if value is None}
    used: dict[str, Any] = {name: dict(live[name]) for name in whole if name in live}
    for name, value in paths:
        if value is None or name in whole or name not in live:
            continue
        values = used.setdefault(name, {})
        if value in live[name]:
            values[value] = live[name][value]
    return used


def fill(
    source: str, fields: Mapping[str, Any], defaults: Mapping[str, str], max_length: int
) -> str:
    """Render ``source``; missing or empty fields take their default; cap the result length."""
    context = dict(defaults)
    context.update({k: v for k, v in fields.items() if v is not None and v != ""})
    text = compile_template(source).render(context)
    return " ".join(text.split())[:max_length]


# typography of the filled text

MINUS = "\u2212"
APOSTROPHE = "\u2019"
QUOTES: dict[str, tuple[str, str, str, str]] = {
    "en": ("\u201c", "\u201d", "\u2018", "\u2019"),
    "nl": ("\u201c", "\u201d", "\u2018", "\u2019"),
    "de": ("\u201e", "\u201c", "\u201a", "\u2018"),
    "fr": ("\u00ab\u202f", "\u202f\u00bb", "\u2018", "\u2019"),
}
"""Opening and closing double quotes, then single ones, by language; any other language's text
takes the English ones."""
_OPENS_AFTER = "([{/\u2012\u2013\u2014-\u201c\u201e\u2018\u201a\u00ab"
"""Characters after which a quote opens (besides the start and white space)."""


def typeset(text: str, locale: str = "en") -> str:
    """``text`` with typographic punctuation: a hyphen-minus that starts a number becomes a
    minus sign (``-17%`` → ``−17%``, not in ``COVID-19`` or ``10-20``), straight quotes
    become the language's (English: “…” and ‘…’, German „…“, French «…») and apostrophes
    become ’ (``O'Brien`` → ``O’Brien``, ``don't``, ``'90s``)."""
    if "-" not in text and '"' not in text and "'" not in text:
        return text
    double_open, double_close, single_open, single_close = QUOTES.get(
        locale.split("_")[0], QUOTES["en"]
    )
    out: list[str] = []
    single_is_open = False
    for index, char in enumerate(text):
        before = text[index - 1] if index else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        opens = not before or before.isspace() or before in _OPENS_AFTER
        if char == "-":
            number_follows = after.isdigit() or (
                after in ".,$€£¥" and text[index + 2 : index + 3].isdigit()
            )
            out.append(MINUS if number_follows and opens else char)
        elif char == '"':
            out.append(double_open if opens and after and not after.isspace() else double_close)
        elif char == "'":
            if before.isalnum() and not (single_is_open and not after.isalnum()):
                out.append(APOSTROPHE)  # O'Brien, don't, students'
            elif opens and after.isalpha():
                out.append(single_open)
                single_is_open = True
            elif single_is_open and before and not before.isspace():
                out.append(single_close)
                single_is_open = False
            else:
                out.append(APOSTROPHE)  # '90s, rock 'n' roll
        else:
            out.append(char)
    return "".join(out)
