"""Our AMP for Email rule checks: a valid email passes; each broken variant fails clearly."""

from __future__ import annotations

import pytest

from server.amp_rules import MAX_STYLESHEET_BYTES, Violation, check_amp_email

VALID = """<!doctype html>
<html ⚡4email data-css-strict>
<head>
<meta charset="utf-8">
<script async src="https://cdn.ampproject.org/v0.js"></script>
<script async custom-element="amp-list" src="https://cdn.ampproject.org/v0/amp-list-0.1.js"></script>
<script async custom-template="amp-mustache" src="https://cdn.ampproject.org/v0/amp-mustache-0.2.js"></script>
<style amp4email-boilerplate>body{visibility:hidden}</style>
<style amp-custom>.slot{display:block;color:#111827}</style>
</head>
<body>
<p style="color:#333">Today's picks</p>
<amp-list src="https://blanco.example/amp/daily/items.json?r=anna.sig&amp;s=2026-11-23" layout="fixed-height" height="200">
<template type="amp-mustache">
<a class="slot" href="{{url}}"><amp-img src="{{image}}" width="{{width}}" height="{{height}}" layout="responsive" alt="{{title}}"></amp-img>{{title}}</a>
</template>
<div fallback><a href="https://blanco.example/s/daily/1?r=anna.sig"><amp-img src="https://blanco.example/s/daily/1.png?r=anna.sig" width="600" height="200" layout="responsive" alt="Trip"></amp-img></a></div>
</amp-list>
<amp-state id="cart"><script type="application/json">{"n": 1}</script></amp-state>
<script async custom-element="amp-bind" src="https://cdn.ampproject.org/v0/amp-bind-0.1.js"></script>
<button on="tap:AMP.setState({cart: {n: 2}})">More</button>
</body>
</html>
"""  # noqa: E501 - an email document, kept as written


def rules(document: str) -> list[str]:
    """The rule ids ``document`` breaks."""
    return [v.rule for v in check_amp_email(document)]


def broken(old: str, new: str, count: int = 1) -> str:
    """``VALID`` with ``old`` replaced by ``new`` (which must occur)."""
    assert old in VALID, old
    return VALID.replace(old, new, count)


def test_the_valid_email_passes() -> None:
    assert check_amp_email(VALID) == []


def test_amp4email_spelling_is_accepted() -> None:
    assert check_amp_email(broken("⚡4email", "amp4email")) == []


def test_a_leading_comment_before_the_doctype_is_accepted() -> None:
    assert check_amp_email("<!-- {{={< >}=}} -->\n" + VALID) == []


@pytest.mark.parametrize(
    ("document", "rule", "words"),
    [
        (broken("<!doctype html>\n", ""), "doctype", "<!doctype html>"),
        (broken(" ⚡4email", ""), "html-amp4email", "⚡4email"),
        (broken('<meta charset="utf-8">\n', ""), "meta-charset", "charset"),
        (broken('charset="utf-8"', 'charset="iso-8859-1"'), "meta-charset", "utf-8"),
        (
            broken('<meta charset="utf-8">\n', "").replace(
                "</head>", '<meta charset="utf-8"></head>'
            ),
            "meta-charset",
            "first child",
        ),
        (
            broken('<script async src="https://cdn.ampproject.org/v0.js"></script>\n', ""),
            "runtime-script",
            "v0.js",
        ),
        (
            broken("<style amp4email-boilerplate>body{visibility:hidden}</style>\n", ""),
            "boilerplate",
            "amp4email-boilerplate",
        ),
        (broken("body{visibility:hidden}", "body{opacity:0}"), "boilerplate", "exactly"),
        (
            broken(
                '<script async custom-element="amp-list" '
                'src="https://cdn.ampproject.org/v0/amp-list-0.1.js"></script>\n',
                "",
            ),
            "extension",
            'custom-element="amp-list"',
        ),
        (
            broken(
                '<script async custom-template="amp-mustache" '
                'src="https://cdn.ampproject.org/v0/amp-mustache-0.2.js"></script>\n',
                "",
            ),
            "extension",
            "amp-mustache",
        ),
        (
            broken("amp-list-0.1.js", "amp-carousel-0.1.js"),
            "extension",
            "https://cdn.ampproject.org/v0/amp-list-",
        ),
        (
            broken(
                "</head>",
                '<script async custom-element="amp-list" '
                'src="https://cdn.ampproject.org/v0/amp-list-0.1.js"></script></head>',
            ),
            "extension",
            "twice",
        ),
        (broken("<p ", "<amp-iframe "), "component", "<amp-iframe>"),
        (
            broken(
                "</head>",
                '<script async custom-element="amp-video" '
                'src="https://cdn.ampproject.org/v0/amp-video-0.1.js"></script></head>',
            ),
            "extension",
            "amp-video",
        ),
        (broken("</body>", "<script>alert(1)</script></body>"), "script", "inline <script>"),
        (
            broken("</body>", '<script src="https://evil.example/x.js"></script></body>'),
            "script",
            "not allowed",
        ),
        (broken("</body>", '<iframe src="https://x.example/"></iframe></body>'), "tag", "<iframe>"),
        (broken("</body>", '<img src="https://x.example/a.png"></body>'), "tag", "<amp-img>"),
        (
            broken("</head>", '<link rel="stylesheet" href="https://x.example/a.css"></head>'),
            "tag",
            "stylesheet",
        ),
        (broken("</body>", "<object></object><embed></body>"), "tag", "<object>"),
        (broken("</body>", "<frame></body>"), "tag", "<frame>"),
        (broken("</head>", '<base href="https://x.example/"></head>'), "tag", "<base>"),
        (
            broken("</body>", '<form method="post" action="https://x.example/"></form></body>'),
            "form",
            "action-xhr",
        ),
        (broken('<p style="color:#333">', '<p onclick="x()">'), "event-handler", "onclick"),
        (
            broken('style="color:#333"', 'style="color:#333 !important"'),
            "important",
            "!important",
        ),
        (
            broken("display:block;color:#111827", "display:block !important"),
            "important",
            "!important",
        ),
        (
            broken(".slot{display:block;color:#111827}", "a{color:red}" * 7000),
            "stylesheet-size",
            f"{MAX_STYLESHEET_BYTES:,}",
        ),
        (
            broken("</head>", "<style amp-custom>p{margin:0}</style></head>"),
            "stylesheet",
            "only one",
        ),
        (broken("</head>", "<style>p{margin:0}</style></head>"), "stylesheet", "amp-custom"),
        (
            broken("https://blanco.example/amp/", "http://blanco.example/amp/"),
            "amp-list",
            "https",
        ),
        (
            broken('layout="fixed-height" height="200"', 'credentials="include" height="200"'),
            "amp-list",
            "credentials",
        ),
        (
            broken(
                VALID[VALID.index('<template type="amp-mustache">') : VALID.index("</template>")]
                + "</template>",
                "",
            ),
            "amp-list",
            "template",
        ),
        (broken('type="amp-mustache"', 'type="handlebars"'), "template", "amp-mustache"),
        (
            broken("?r=anna.sig&amp;s=2026-11-23", "?r={{blanco_token}}&amp;s=2026-11-23"),
            "template-syntax",
            "merge ESP tags",
        ),
        (broken("r=anna.sig&amp;s=", "__amp_source_origin=x&amp;s="), "url", "__amp_source_origin"),
        (
            broken('href="https://blanco.example/s/daily/1?r=anna.sig"', 'href="/s/daily/1"'),
            "href",
            "absolute",
        ),
        (broken('<button on="tap', '<button [src]="x" on="tap'), "binding", "[src]"),
        (broken("<body>", "<body>" + "x" * 200_000), "size", "200,000"),
        (broken("<head>", "").replace("</head>", ""), "structure", "<head>"),
    ],
)
def test_each_rule_fails_with_a_clear_message(document: str, rule: str, words: str) -> None:
    found = check_amp_email(document)
    assert rule in [v.rule for v in found], [str(v) for v in found]
    messages = " | ".join(v.message for v in found if v.rule == rule)
    assert words in messages


def test_a_violation_reads_with_its_line() -> None:
    (violation,) = check_amp_email(broken('<p style="color:#333">', '<p onclick="x()">'))
    assert violation == Violation(
        "event-handler", "event handler attribute onclick= is not allowed", 12
    )
    assert str(violation) == (
        "line 12: event handler attribute onclick= is not allowed [event-handler]"
    )


def test_amp_on_attribute_and_inline_styles_are_allowed() -> None:
    assert "event-handler" not in rules(VALID)
    assert 'on="tap:' in VALID
    assert 'style="color:#333"' in VALID
