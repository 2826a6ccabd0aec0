"""URL rules that compile their URL builders when first used, and parse a rule once per process.

Werkzeug compiles two URL-building functions per rule (generated Python code) as each rule is
added: about 1 ms a rule, a tenth of a second for Blanco's routes, paid by every app that is
built (each gunicorn worker, each test) though most rules are never built into a URL. Matching
is unchanged; ``url_for`` compiles a rule's builder the first time it builds that rule.

Parsing a rule into its parts and converters is the same for every app of the process (the
same rule text, options and converter classes), so the parts are parsed once and shared: they
are read, never changed, after parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule

_parsed: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
"""Rule parts, trace and converters by what they are parsed from."""


class LazyBuildRule(Rule):
    """A ``Rule`` whose URL builders are compiled on first use, its parts parsed once."""

    def compile(self) -> None:
        assert self.map is not None, "rule not bound"
        key = (
            self.rule,
            self.merge_slashes,
            self.map.host_matching,
            self.host,
            self.subdomain,
            tuple(sorted(self.map.converters.items())),
        )
        found = _parsed.get(key)
        if found is None:
            super().compile()
            _parsed[key] = (self._parts, self._trace, self._converters)
            return
        self._parts, self._trace, self._converters = found
        self.arguments.update(self._converters)
        self._build = self._compile_builder(False).__get__(self, None)
        self._build_unknown = self._compile_builder(True).__get__(self, None)

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: list[Callable[..., tuple[str, str]]] = []
        eager = super()._compile_builder

        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(eager(append_unknown).__get__(rule, None))
            return compiled[0](*args, **kwargs)

        return build
