"""Untrusted JSON text: a nesting limit checked before any parser recurses, and strict parsing.

Every JSON request body and every JSON Lines line goes through ``nesting_problem`` first:
Python's ``json`` raises RecursionError near 1,000 levels and pydantic's JSON parser gives up
at 200, so a document deeper than ``MAX_JSON_DEPTH`` is refused with a pointer to where it
goes too deep. The scan skips string contents, and costs two ``count`` calls for a document
with fewer brackets than the limit (every ordinary one).

``parse_json`` also refuses the ``NaN``, ``Infinity`` and ``-Infinity`` literals that Python's
``json`` accepts but that are not JSON (RFC 8259), and numbers too large to be finite.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from models.errors import FieldError, InvalidInput

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in a JSON document or a JSON Lines line.

Far above real use (a block whose condition nests the most ``all`` levels a condition may
have, 32, is about 70 levels deep), and far below where the parsers fail."""

_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_TOKENS = re.compile(rf"(?P<key>{_STRING})\s*:|{_STRING}|[\[\]{{}},]", re.DOTALL)


def nesting_problem(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> FieldError | None:
    """Where ``text`` nests arrays and objects deeper than ``limit``, else None (also for text
    that is not JSON at all: the parser reports that)."""
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= limit:
            return None
        return _scan(text.decode("utf-8", errors="replace"), limit)
    if text.count("[") + text.count("{") <= limit:
        return None
    return _scan(text, limit)


def _scan(text: str, limit: int) -> FieldError | None:
    """Follow the brackets outside strings, keeping the path to the current position."""
    path: list[str | int] = []
    kinds: list[str] = []
    for match in _TOKENS.finditer(text):
        key = match.group("key")
        piece = match.group()
        if key is not None:
            if kinds and kinds[-1] == "{":
                path[-1] = _key(key)
        elif piece in "[{":
            if len(kinds) == limit:
                return FieldError(
                    tuple(path), f"nests arrays and objects deeper than {limit} levels"
                )
            kinds.append(piece)
            path.append(0 if piece == "[" else "")
        elif piece in "]}":
            if kinds:
                kinds.pop()
                path.pop()
        elif piece == "," and kinds and kinds[-1] == "[":
            index = path[-1]
            path[-1] = index + 1 if isinstance(index, int) else 0
    return None


def _key(quoted: str) -> str:
    try:
        key = json.loads(quoted)
    except ValueError:
        return quoted[1:-1]
    return key if isinstance(key, str) else quoted[1:-1]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def parse_json(text: str | bytes, what: str = "request body") -> Any:
    """``text`` as JSON; InvalidInput (with a pointer where possible) when it nests too deep,
    is not JSON, or holds NaN, Infinity or a number too large to be finite."""
    problem = nesting_problem(text)
    if problem is not None:
        raise InvalidInput(f"the {what} nests too deep", [problem])
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN or an infinite number
        raise InvalidInput(f"the {what} is not valid JSON", [FieldError((), str(exc))]) from None
