"""Our own checks of an AMP for Email document, for when the official validator (which loads
its rules from the AMP CDN) cannot run.

``check_amp_email(document)`` parses the document with the standard library's HTML parser and
returns the rules it breaks, each with a rule id, a message and the line. It covers what
Blanco's generated newsletter relies on and what hand edits most often break; it is not the
whole validator. Run ``amphtml-validator --html_format AMP4EMAIL`` where the network allows.

Sources (ampproject/amphtml ``docs/spec/email/``: amp-email-format, -html, -components, -css):

- the document starts with ``<!doctype html>`` (comments may precede it: an ESP directive such
  as Salesforce's GTL delimiter switch sits there) and is at most 200,000 bytes;
- ``<html ⚡4email>`` (or ``amp4email``) with ``<head>`` and ``<body>``;
- ``<meta charset="utf-8">`` is the head's first child; the head holds
  ``<script async src="https://cdn.ampproject.org/v0.js">`` and
  ``<style amp4email-boilerplate>body{visibility:hidden}</style>``;
- only the listed HTML tags and AMP components; every component used has its extension script
  (``custom-element`` / ``custom-template``) from the AMP CDN, declared once; no other script;
- no event-handler attributes (``on…``; AMP's own ``on`` is fine); inline ``style`` attributes
  are allowed, ``!important`` is not (there or in the stylesheet); one ``<style amp-custom>`` of
  at most 75,000 bytes; no ``<link rel=stylesheet>`` (no ``<link>`` at all);
- ``amp-list`` has an https ``src`` (binding ``[src]`` is not allowed in email), no
  ``credentials="include"``, and a ``<template type="amp-mustache">`` (or a ``template`` id);
- a ``<form>`` uses ``action-xhr``, never ``action``;
- a ``src`` or ``href`` holds template syntax only as a whole ``{{variable}}`` (unmerged ESP
  tags such as ``?r={{token}}`` are refused, as the validator refuses them: check the email as
  the ESP sends it), and never ``__amp_source_origin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

MAX_DOCUMENT_BYTES = 200_000
MAX_STYLESHEET_BYTES = 75_000
RUNTIME = "https://cdn.ampproject.org/v0.js"
BOILERPLATE = "body{visibility:hidden}"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HTML_TAGS = _words(
    """a abbr address article aside b bdo blockquote body br button caption cite code col
    colgroup data datalist dd del details dfn div dl dt em fieldset figcaption figure footer
    form h1 h2 h3 h4 h5 h6 head header hr html i input ins kbd label legend li main mark meta
    meter nav ol optgroup option output p pre progress q rb rp rt ruby s samp script section
    select small span strong style sub summary sup table tbody td template textarea tfoot th
    thead time tr u ul var wbr"""
)
"""The HTML tags AMP for Email allows (amp-email-html.md)."""

COMPONENTS: dict[str, str | None] = {
    "amp-accordion": "amp-accordion",
    "amp-anim": "amp-anim",
    "amp-bind-macro": "amp-bind",
    "amp-carousel": "amp-carousel",
    "amp-fit-text": "amp-fit-text",
    "amp-img": None,
    "amp-layout": None,
    "amp-list": "amp-list",
    "amp-selector": "amp-selector",
    "amp-sidebar": "amp-sidebar",
    "amp-state": "amp-bind",
    "amp-timeago": "amp-timeago",
}
"""AMP for Email's components (amp-email-components.md) and the extension each needs (None:
built into the runtime)."""

EXTENSIONS = frozenset(
    {e for e in COMPONENTS.values() if e} | {"amp-form", "amp-mustache"},
)
"""Extension scripts an AMP email may load."""

TAG_HINTS = {
    "img": ": use <amp-img>",
    "link": ": external stylesheets are not supported; use <style amp-custom>",
    "iframe": ": no embedded pages in AMP for Email",
}
VOID_TAGS = _words("br col hr input meta wbr img link base embed source track area")
_EXTENSION_SRC = re.compile(r"https://cdn\.ampproject\.org/v0/(amp-[a-z-]+)-(\d+\.\d+|latest)\.js")
_WHOLE_VARIABLE = re.compile(r"\{\{\s*[\w.]+\s*\}\}")
_HREF_SCHEMES = ("https://", "http://", "mailto:", "tel:")


@dataclass(frozen=True)
class Violation:
    """One broken rule: a short rule id, a message for people, and the line (1-based)."""

    rule: str
    message: str
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.message} [{self.rule}]"


@dataclass
class _Open:
    tag: str
    attrs: dict[str, str | None]
    line: int
    children: int = 0


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.violations: list[Violation] = []
        self.stack: list[_Open] = []
        self.seen_doctype = False
        self.seen_content = False
        self.seen: set[str] = set()
        self.runtime = False
        self.boilerplate = False
        self.stylesheets = 0
        self.used: dict[str, int] = {}
        self.declared: dict[str, int] = {}
        self.boilerplate_tag = False
        self.charset = False
        self.amp_lists: list[tuple[int, bool]] = []
        """(line, has a template) of each amp-list."""

    # helpers

    def fail(self, rule: str, message: str, line: int | None = None) -> None:
        self.violations.append(Violation(rule, message, line or self.getpos()[0]))

    def inside(self, tag: str) -> bool:
        return any(o.tag == tag for o in self.stack)

    def _content(self) -> None:
        if not self.seen_doctype and not self.seen_content:
            self.fail("doctype", "the document must start with <!doctype html>")
        self.seen_content = True

    # parser callbacks

    def handle_decl(self, decl: str) -> None:
        if decl.strip().lower() == "doctype html" and not self.seen_content:
            self.seen_doctype = True
        else:
            self.fail("doctype", f"unexpected declaration <!{decl}>; use <!doctype html> first")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._content()
        line = self.getpos()[0]
        values = dict(attrs)
        parent = self.stack[-1] if self.stack else None
        if parent is not None:
            parent.children += 1
            if tag == "template" and parent.tag == "amp-list":
                self.amp_lists[-1] = (self.amp_lists[-1][0], True)
        self.seen.add(tag)
        self._check_tag(tag, values, parent, line)
        self._check_attributes(tag, values)
        if tag not in VOID_TAGS:
            self.stack.append(_Open(tag, values, line))

    def handle_endtag(self, tag: str) -> None:
        if not any(o.tag == tag for o in self.stack):
            return
        while self.stack:
            if self.stack.pop().tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if not data.strip():
            return
        current = self.stack[-1] if self.stack else None
        if current is None:
            self._content()
            return
        if current.tag == "script" and current.attrs.get("src"):
            self.fail("script", "a <script src> must be empty", current.line)
        elif current.tag == "style":
            self._check_style(current, data)

    # the rules

    def _check_tag(
        self, tag: str, values: dict[str, str | None], parent: _Open | None, line: int
    ) -> None:
        if tag == "html":
            if "⚡4email" not in values and "amp4email" not in values:
                self.fail("html-amp4email", "<html> needs the ⚡4email (or amp4email) attribute")
        elif tag == "meta" and values.get("charset") is not None:
            self.charset = (values.get("charset") or "").lower() == "utf-8"
            if not self.charset:
                self.fail("meta-charset", 'the charset must be <meta charset="utf-8">')
        elif tag == "script":
            self._check_script(values)
        elif tag == "style":
            self._check_style_tag(values)
        elif tag == "template":
            if values.get("type") != "amp-mustache":
                self.fail("template", '<template> must be type="amp-mustache"')
            self._use("amp-mustache", line)
        elif tag == "form":
            self._use("amp-form", line)
            if "action" in values or not values.get("action-xhr"):
                self.fail("form", "<form> must use action-xhr (and no action) in AMP for Email")
        elif tag == "amp-list":
            self._check_list(values, line)
        first_in_head = parent is not None and parent.tag == "head" and parent.children == 1
        if first_in_head and (tag != "meta" or (values.get("charset") or "").lower() != "utf-8"):
            self.fail("meta-charset", '<meta charset="utf-8"> must be the first child of <head>')
        if tag.startswith("amp-"):
            if tag in COMPONENTS:
                extension = COMPONENTS[tag]
                if extension:
                    self._use(extension, line)
            elif tag != "amp-list-load-more":
                self.fail("component", f"<{tag}> is not supported in AMP for Email")
        elif tag not in HTML_TAGS:
            hint = TAG_HINTS.get(tag, "")
            self.fail("tag", f"<{tag}> is not allowed in AMP for Email{hint}")

    def _check_attributes(self, tag: str, values: dict[str, str | None]) -> None:
        in_template = self.inside("template")
        for name, value in values.items():
            if name.startswith("on") and name != "on":
                self.fail("event-handler", f"event handler attribute {name}= is not allowed")
            if name in ("[src]", "[href]"):
                self.fail("binding", f"binding {name} is not allowed in AMP for Email")
            if name == "style" and value and "!important" in value.lower():
                self.fail("important", f"!important is not allowed (style attribute of <{tag}>)")
            if name in ("src", "href") and value is not None:
                self._check_url(tag, name, value, in_template)

    def _check_url(self, tag: str, name: str, value: str, in_template: bool) -> None:
        if "__amp_source_origin" in value:
            self.fail("url", f"<{tag} {name}> must not name __amp_source_origin")
        braces = "{{" in value or "}}" in value
        if braces and not _WHOLE_VARIABLE.fullmatch(value.strip()):
            self.fail(
                "template-syntax",
                f'<{tag} {name}="{value[:80]}"> holds template syntax other than a whole '
                "{{variable}} (merge ESP tags before checking)",
            )
        elif (
            name == "href"
            and not braces
            and not in_template
            and not value.lower().startswith(_HREF_SCHEMES)
            and not value.startswith("#")
        ):
            self.fail("href", f'<{tag} href="{value[:80]}"> must be an absolute URL')

    def _check_script(self, values: dict[str, str | None]) -> None:
        src = values.get("src") or ""
        element = values.get("custom-element") or values.get("custom-template")
        if "async" not in values and (src == RUNTIME or element):
            self.fail("script", f"<script src={src!r}> must be async")
        if src == RUNTIME and element is None:
            if not self.inside("head"):
                self.fail("runtime-script", "the AMP runtime script must be in <head>")
            self.runtime = True
            return
        if element is not None:
            match = _EXTENSION_SRC.fullmatch(src)
            if element not in EXTENSIONS:
                self.fail("extension", f"the extension {element} is not allowed in AMP for Email")
            elif match is None or match.group(1) != element:
                self.fail(
                    "extension",
                    f"the {element} script must come from "
                    f"https://cdn.ampproject.org/v0/{element}-<version>.js, not {src!r}",
                )
            if element in self.declared:
                self.fail("extension", f"the {element} script is declared twice")
            self.declared[element] = self.getpos()[0]
            return
        kind = (values.get("type") or "").lower()
        if src or kind != "application/json" or not self.inside("amp-state"):
            what = f"<script src={src!r}>" if src else "inline <script>"
            self.fail("script", f"{what} is not allowed (only AMP's own scripts)")

    def _check_style_tag(self, values: dict[str, str | None]) -> None:
        if "amp4email-boilerplate" in values:
            self.boilerplate_tag = True
            if not self.inside("head"):
                self.fail("boilerplate", "<style amp4email-boilerplate> must be in <head>")
        elif "amp-custom" in values:
            self.stylesheets += 1
            if self.stylesheets > 1:
                self.fail("stylesheet", "only one <style amp-custom> is allowed")
            if not self.inside("head"):
                self.fail("stylesheet", "<style amp-custom> must be in <head>")
        else:
            self.fail("stylesheet", "a <style> must be amp-custom or amp4email-boilerplate")

    def _check_style(self, current: _Open, css: str) -> None:
        if "amp4email-boilerplate" in current.attrs:
            self.boilerplate = re.sub(r"\s+", "", css) == BOILERPLATE
            return
        size = len(css.encode())
        if size > MAX_STYLESHEET_BYTES:
            self.fail(
                "stylesheet-size",
                f"<style amp-custom> is {size:,} bytes; at most {MAX_STYLESHEET_BYTES:,} allowed",
                current.line,
            )
        if "!important" in css.lower():
            self.fail("important", "!important is not allowed in <style amp-custom>")

    def _check_list(self, values: dict[str, str | None], line: int) -> None:
        src = values.get("src")
        if not src:
            self.fail("amp-list", "<amp-list> needs a src (binding [src] is not allowed in email)")
        elif not src.startswith("https://"):
            self.fail("amp-list", f"<amp-list src> must be an https URL, not {src[:80]!r}")
        if (values.get("credentials") or "").lower() == "include":
            self.fail("amp-list", '<amp-list credentials="include"> is not allowed in email')
        self.amp_lists.append((line, "template" in values))

    def _use(self, extension: str, line: int) -> None:
        self.used.setdefault(extension, line)

    def finish(self, document: str) -> None:
        """The rules that need the whole document."""
        size = len(document.encode())
        if size > MAX_DOCUMENT_BYTES:
            self.fail("size", f"the document is {size:,} bytes; at most 200,000 allowed", 1)
        if not self.seen_doctype and not self.seen_content:
            self.fail("doctype", "the document must start with <!doctype html>", 1)
        for tag in ("head", "body"):
            if tag not in self.seen:
                self.fail("structure", f"the document needs a <{tag}>", 1)
        if "html" not in self.seen:
            self.fail("html-amp4email", "the document needs <html ⚡4email>", 1)
        if not self.charset and "meta-charset" not in {v.rule for v in self.violations}:
            self.fail("meta-charset", 'the document needs <meta charset="utf-8">', 1)
        if not self.runtime:
            self.fail("runtime-script", f'the head needs <script async src="{RUNTIME}">', 1)
        if self.boilerplate_tag and not self.boilerplate:
            self.fail("boilerplate", f"the boilerplate must be exactly {BOILERPLATE}", 1)
        elif not self.boilerplate_tag:
            self.fail(
                "boilerplate",
                f"the head needs <style amp4email-boilerplate>{BOILERPLATE}</style>",
                1,
            )
        for extension, line in sorted(self.used.items()):
            if extension not in self.declared:
                kind = "custom-template" if extension == "amp-mustache" else "custom-element"
                self.fail(
                    "extension",
                    f'{extension} is used but its script is missing: <script async {kind}="'
                    f'{extension}" src="https://cdn.ampproject.org/v0/{extension}-….js">',
                    line,
                )
        for line, has_template in self.amp_lists:
            if not has_template:
                self.fail(
                    "amp-list",
                    '<amp-list> needs a <template type="amp-mustache"> (or a template id)',
                    line,
                )


def check_amp_email(document: str) -> list[Violation]:
    """The AMP for Email rules ``document`` breaks (empty when it passes these checks)."""
    checker = _Checker()
    checker.feed(document)
    checker.close()
    checker.finish(document)
    return checker.violations
