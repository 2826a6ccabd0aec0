"""IANA time zones by name: the one place that turns a name into a zone, or a clear error.

``ZoneInfo`` refuses a bad name in several ways: ``ZoneInfoNotFoundError`` for an unknown one,
``ValueError`` for a path, ``IsADirectoryError`` for a folder such as ``America`` and
``OSError`` for an over-long name. Profiles, conditions, newsletters and countdowns all check
names here (it lives with the renderers, the lowest layer, so that every layer may use it),
so each refuses the same names with the same message.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=512)
def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError (with a message for the client) if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a long name
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Amsterdam)"
        ) from None


def time_zone_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA time zone name, else None."""
    if not isinstance(name, str):
        return "must be an IANA time zone such as Europe/Amsterdam"
    try:
        time_zone(name)
    except ValueError as exc:
        return str(exc)
    return None
