"""How each ESP fills in its merge tags, and reading the merged HTML like an email client.

The Liquid dialects are rendered by the real python-liquid engine; where an ESP's syntax is not
plain Liquid (Braze's ``${…}``, Klaviyo's Django filters) a small, documented shim stands in for
that ESP's part. Mailchimp and AMPscript are mimicked by small substitutions written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import jinja2
import liquid

# --- how each ESP fills in its merge tags -------------------------------------------------------


def mailchimp(html: str, fields: dict[str, str]) -> str:
    """Mailchimp: ``*|TAG|*`` becomes the stored value as it is (tags are capitals)."""
    values = {name.upper(): value for name, value in fields.items()}
    return re.sub(r"\*\|([A-Z0-9_]+)\|\*", lambda m: values[m.group(1)], html)


def ampscript_urlencode(text: str, all_chars: bool = False, all_strings: bool = False) -> str:
    """AMPscript ``URLEncode``: with both flags, the whole value is made URL-safe; without them
    only spaces (in a URL's parameters) become %20. Salesforce does not list the exact character
    set; this encodes everything outside RFC 3986's unreserved characters."""
    if all_chars and all_strings:
        return quote(text, safe="")
    return text.replace(" ", "%20")


class AmpScript:
    """Just enough AMPscript: ``%%[ SET @v = expr ]%%`` blocks, ``%%=expr=%%`` inline output and
    ``%%field%%`` personalization strings; expressions are string and number literals,
    ``@variables`` and the functions ``AttributeValue``, ``URLEncode`` and ``v``."""

    TOKEN = re.compile(r"\s*(?:(@\w+)|'([^']*)'|\"([^\"]*)\"|(\d+)|(\w+)|([(),=]))")

    def __init__(self, attributes: dict[str, str]) -> None:
        self.attributes = attributes
        self.variables: dict[str, str] = {}

    def render(self, html: str) -> str:
        html = re.sub(r"%%\[(.*?)\]%%", lambda m: self._block(m.group(1)), html, flags=re.S)
        html = re.sub(r"%%=(.*?)=%%", lambda m: self.evaluate(m.group(1)), html, flags=re.S)
        return re.sub(r"%%(\w+)%%", lambda m: self.attributes[m.group(1)], html)

    def _block(self, code: str) -> str:
        for statement in filter(None, (s.strip() for s in code.splitlines())):
            match = re.fullmatch(r"(?i:set)\s+(@\w+)\s*=\s*(.+)", statement)
            assert match, statement
            self.variables[match.group(1).lower()] = self.evaluate(match.group(2))
        return ""

    def evaluate(self, expression: str) -> str:
        tokens = [m for m in self.TOKEN.finditer(expression) if m.group(0).strip()]
        assert "".join(m.group(0) for m in tokens).strip() == expression.strip(), expression
        value, rest = self._expression(tokens)
        assert not rest, expression
        return value

    def _expression(self, tokens: list[re.Match[str]]) -> tuple[str, list[re.Match[str]]]:
        token, rest = tokens[0], tokens[1:]
        variable, single, double, number, name, _ = token.groups()
        if variable:
            return self.variables[variable.lower()], rest
        if single is not None or double is not None:
            return single if single is not None else double, rest
        if number:
            return number, rest
        assert name, token.group(0)
        assert rest, token.group(0)
        assert rest[0].group(6) == "(", token.group(0)
        arguments: list[str] = []
        rest = rest[1:]
        while rest[0].group(6) != ")":
            argument, rest = self._expression(rest)
            arguments.append(argument)
            if rest[0].group(6) == ",":
                rest = rest[1:]
        return self._call(name.lower(), arguments), rest[1:]

    def _call(self, name: str, arguments: list[str]) -> str:
        if name == "attributevalue":
            return self.attributes[arguments[0]]
        if name == "v":
            return arguments[0]
        if name == "urlencode":
            flags = [a in ("1", "true") for a in arguments[1:]] + [False, False]
            return ampscript_urlencode(arguments[0], flags[0], flags[1])
        raise AssertionError(f"no AMPscript function {name} here")


def salesforce(html: str, fields: dict[str, str]) -> str:
    """Salesforce Marketing Cloud evaluates the AMPscript against the subscriber's attributes."""
    return AmpScript(fields).render(html)


def shopify_url_escape(value: Any, also: str = "") -> str:
    """Shopify Liquid's ``url_escape`` (Ruby's URI escape: reserved characters stay); Braze
    documents ``url_param_escape`` as the same with ``&`` escaped too."""
    kept = "-_.!~*'();/?:@&=+$,[]"
    return quote(str(value), safe="".join(c for c in kept if c not in also))


def braze(html: str, fields: dict[str, str]) -> str:
    """Braze: Liquid where ``${name}`` names an attribute; ``{{custom_attribute.${x}}}`` reads a
    custom attribute. python-liquid has no ``${…}``, so it is rewritten to a plain name first,
    and Braze's URL filters are registered."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    environment.filters["url_escape"] = shopify_url_escape
    environment.filters["url_param_escape"] = lambda value: shopify_url_escape(value, also="&")
    template = re.sub(r"\$\{(\w+)\}", r"\1", html)
    return environment.from_string(template).render(custom_attribute=fields)


def klaviyo(html: str, fields: dict[str, str]) -> str:
    """Klaviyo: Django-style templates (output HTML-escaped) with ``person|lookup:'name'`` for a
    profile property and Django's ``urlencode`` (``/`` kept). Both are registered as filters on
    python-liquid, which parses Klaviyo's ``filter:'argument'`` syntax."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined, autoescape=True)
    environment.filters["lookup"] = lambda person, name: person.get(name, "")
    environment.filters["urlencode"] = lambda value, safe="/": quote(str(value), safe=safe)
    return environment.from_string(html).render(person=fields)


def hubspot_liquid(html: str, fields: dict[str, str]) -> str:
    """HubSpot's ``{{contact.name}}`` parses as plain Liquid."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    return environment.from_string(html).render(contact=fields)


def hubspot_hubl(html: str, fields: dict[str, str]) -> str:
    """HubL is Jinja-based (Jinjava): Jinja2, inserting contact tokens as they are."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return environment.from_string(html).render(contact=fields)


def generic_liquid(html: str, fields: dict[str, str]) -> str:
    """The generic form in Liquid."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    return environment.from_string(html).render(**fields)


def generic_jinja(html: str, fields: dict[str, str]) -> str:
    """The generic form in Jinja2 with HTML autoescaping."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    return environment.from_string(html).render(**fields)


Merge = Callable[[str, dict[str, str]], str]
MERGES: dict[str, list[Merge]] = {
    "mailchimp": [mailchimp],
    "salesforce": [salesforce],
    "braze": [braze],
    "klaviyo": [klaviyo],
    "hubspot": [hubspot_liquid, hubspot_hubl],
    "generic": [generic_liquid, generic_jinja],
}
MERGE_CASES = [(esp, merge) for esp, merges in MERGES.items() for merge in merges]
MERGE_IDS = [f"{esp}-{merge.__name__}" for esp, merge in MERGE_CASES]
ENCODING_DIALECTS = ("salesforce", "braze", "klaviyo")


# --- reading the merged HTML like an email client -----------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes (values unescaped, as an email client reads them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The start tags of ``html``."""
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.tags


def image_and_link(html: str) -> tuple[str, str]:
    """The image URL and the link URL of an ``<a><img></a>`` (or compiled MJML)."""
    found = elements(html)
    hrefs = [a.get("href") for tag, a in found if tag == "a"]
    srcs = [a.get("src") for tag, a in found if tag == "img"]
    assert len(hrefs) == 1, found
    assert len(srcs) == 1, found
    assert hrefs[0] is not None
    assert srcs[0] is not None
    return srcs[0], hrefs[0]
