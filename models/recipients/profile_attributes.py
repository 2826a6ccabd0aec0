"""The profile attributes Blanco knows by name: their types and rules, checked on every upsert.

Any other attribute (``[a-z][a-z0-9_]*``) is a custom one: text, a number, a boolean or a list of
short texts. Known ones are checked so that conditions, time zones, greetings and consent read
what they expect; ``null`` always removes an attribute.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from renderers.time_zones import time_zone_problem

GENDERS = ("female", "male", "non_binary", "unknown")


def _text(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return "must be non-empty text"
        return None if len(value) <= limit else f"must be at most {limit} characters"

    return check


def _matching(pattern: str, example: str) -> Callable[[Any], str | None]:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        if isinstance(value, str) and compiled.fullmatch(value):
            return None
        return f"must look like {example}"

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of: {', '.join(choices)}"

    return check


@dataclass(frozen=True)
class KnownAttribute:
    """A profile attribute with a fixed meaning."""

    name: str
    kind: str
    description: str
    check: Callable[[Any], str | None]


KNOWN_ATTRIBUTES: dict[str, KnownAttribute] = {
    a.name: a
    for a in (
        KnownAttribute("email", "text", "The address the ESP sends to (exported as an ESP field).",
                       _matching(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}", "name@example.com")),
        KnownAttribute("first_name", "text", "Greets the recipient.", _text(200)),
        KnownAttribute("last_name", "text", "Family name.", _text(200)),
        KnownAttribute("salutation", "text", "e.g. Mr, Ms, Dr: use it only when confirmed.",
                       _text(50)),
        KnownAttribute("salutation_confirmed", "boolean",
                       "The recipient confirmed the salutation.", _boolean),
        KnownAttribute("gender", "one of " + ", ".join(GENDERS), "Only as the recipient gave it.",
                       _one_of(*GENDERS)),
        KnownAttribute("language", "BCP 47 language tag", "e.g. nl or nl-NL.",
                       _matching(r"[a-z]{2,3}(-[A-Z]{2})?", "nl or nl-NL")),
        KnownAttribute("time_zone", "IANA time zone",
                       "For time windows and countdowns `\"tz\": \"recipient\"`.",
                       time_zone_problem),
        KnownAttribute("country", "ISO 3166-1 alpha-2", "e.g. NL.",
                       _matching(r"[A-Z]{2}", "NL")),
        KnownAttribute("consent_email", "boolean",
                       "Opted in to email: a newsletter's audience needs it true.", _boolean),
        KnownAttribute("consent_personalisation", "boolean",
                       "false: generic content only, no profile use.", _boolean),
        KnownAttribute("persona", "text", "A buyer persona (or assigned by the persona rules).",
                       _matching(r"[a-z0-9][a-z0-9_-]{0,63}", "city_tripper")),
    )
}  # fmt: skip


def finite_value(value: Any) -> Any:
    """``value`` unchanged, unless it is NaN or ±Infinity (not JSON): then ValueError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and Infinity are not JSON)")
    return value


def attribute_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not valid for the known attribute ``name``; None if it is (or if the
    attribute is a custom one, or the value is ``null``, which removes it)."""
    known = KNOWN_ATTRIBUTES.get(name)
    if known is None or value is None:
        return None
    return known.check(value)
