"""Templates run sandboxed (docs/renderers.md, "Text"; docs/channels.md, "Live HTML"): an
admin's template cannot reach Python's internals, and live HTML escapes every value, so a
profile value can never inject markup."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from renderers.html import HtmlContent
from renderers.templating import fill

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ first_name.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_text_placeholders_cannot_reach_python_internals(source: str) -> None:
    try:
        text = fill(source, {"first_name": "Anna"}, {}, 500)
    except SecurityError:
        return
    assert "class" not in text
    assert "function" not in text
    assert "module" not in text


@pytest.mark.parametrize("source", ESCAPES)
def test_live_html_cannot_reach_python_internals(source: str) -> None:
    content = HtmlContent(source=f"<p>{source}</p>")
    try:
        html = str(content.render({"first_name": "Anna"}))
    except SecurityError:
        return
    assert "class" not in html
    assert "function" not in html
    assert "module" not in html


def test_live_html_escapes_every_value() -> None:
    content = HtmlContent(
        source='<a title="{{ note }}">{{ first_name }}</a>', defaults={"note": "<b>"}
    )
    html = str(content.render({"first_name": '<script>alert("x")</script>'}))
    assert html == ('<a title="&lt;b&gt;">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</a>')
