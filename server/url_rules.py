"""URL rules that compile their URL builders when first used, not when registered.

Werkzeug compiles two URL-building functions per rule (generated Python code) as each rule is
added: about 1 ms a rule, a tenth of a second for Blanco's routes, paid by every app that is
built (each gunicorn worker, each test) though most rules are never built into a URL. Matching
is unchanged; ``url_for`` compiles a rule's builder the first time it builds that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule


class LazyBuildRule(Rule):
    """A ``Rule`` whose URL builders are compiled on first use."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: list[Callable[..., tuple[str, str]]] = []
        eager = super()._compile_builder

        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(eager(append_unknown).__get__(rule, None))
            return compiled[0](*args, **kwargs)

        return build
