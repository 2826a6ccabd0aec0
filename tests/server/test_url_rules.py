"""URL rules compile their builders on first use and share their parsed parts between the apps
of a process: every route of every app still builds the URL it matches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter, Rule

from server.url_rules import LazyBuildRule


def _sample(rule: Rule, name: str) -> str:
    """A value the argument's converter accepts (one of an ``any``'s items, a number)."""
    converter = rule._converters[name]
    items = getattr(converter, "items", None)
    if items:
        return str(sorted(items)[0])
    return "7" if isinstance(converter, IntegerConverter) else "x1"


@pytest.mark.parametrize("apps", [1, 2])
def test_every_route_builds_the_url_that_matches_it(
    make_app: Callable[..., Flask], apps: int
) -> None:
    app = [make_app() for _ in range(apps)][-1]  # the second app reuses the first's parts
    adapter = app.url_map.bind("blanco.test")
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 50
    for rule in rules:
        assert isinstance(rule, LazyBuildRule) or rule.endpoint == "static"  # added by Flask()
        values = {name: _sample(rule, name) for name in rule.arguments}
        method = sorted((rule.methods or {"GET"}) - {"HEAD", "OPTIONS"})[0]
        path = adapter.build(rule.endpoint, values, method=method)
        endpoint, matched = adapter.match(path, method=method)
        assert endpoint == rule.endpoint, rule.rule
        assert {k: str(v) for k, v in matched.items()} == values, rule.rule
        assert adapter.build(rule.endpoint, {**values, "extra": "y"}, method=method).endswith(
            "?extra=y"
        )  # the other builder: unknown values become the query
