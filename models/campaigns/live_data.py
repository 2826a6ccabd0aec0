"""Real-time data sources: named sets of values (seats left, a price, a delay notice) that the
data team pushes by API, each with a freshness limit.

A source is replaced as a whole on every push and stamped with the server's time, so its age
says how old every one of its values is. At open time only *fresh* sources count: a source older
than its ``max_age_seconds`` is treated as missing by conditions (``{"live": …}``), by
templates (``{{ live.<source>.<value> }}``) and by variants that require it (``requires_live``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)

MAX_SOURCES = 100
"""Most live sources stored at once (every worker keeps all of them in memory)."""
MAX_VALUES_PER_SOURCE = 100
MAX_STRING_LENGTH = 500
MAX_SOURCE_BYTES = 16 * 1024
"""Largest stored document of one source (its values as JSON)."""
MAX_AGE_LIMIT_SECONDS = 30 * 24 * 3600
MAX_INTEGER = 2**53
"""Integers beyond this magnitude lose precision in JavaScript, so they are refused."""
MAX_REQUIRED_SOURCES = 20
"""Most sources one variant may require."""

RESERVED_NAMES = frozenset(
    {"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem"}
    | {"setdefault", "update", "values"}
)
"""Names that templates would read as a mapping's methods (``live.items``), so refused."""

SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
VALUE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
LIVE_PATH_PATTERN = r"^[a-z][a-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$"
"""``<source>.<value>``, as conditions name one live value."""


def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved (templates would read it as a method)")
    return name


SourceName = Annotated[
    str,
    Field(pattern=SOURCE_PATTERN, description="Lower-case letters, digits and _; a letter first."),
    AfterValidator(_not_reserved),
]
ValueName = Annotated[str, Field(pattern=VALUE_PATTERN), AfterValidator(_not_reserved)]


def valid_source_name(name: str) -> bool:
    """Whether ``name`` may name a live source."""
    return re.fullmatch(SOURCE_PATTERN, name) is not None and name not in RESERVED_NAMES


LiveScalar = str | int | float | bool


def _scalar(value: Any) -> LiveScalar:
    """A string, number or boolean within bounds; one clear error for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ValueError(f"integers must be within ±{MAX_INTEGER}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise ValueError(f"strings may have at most {MAX_STRING_LENGTH} characters")
        return value
    raise ValueError("must be a string, number or boolean (no objects, lists or null)")


LiveValue = Annotated[
    LiveScalar,
    PlainValidator(_scalar),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_STRING_LENGTH},
                {"type": "integer", "minimum": -MAX_INTEGER, "maximum": MAX_INTEGER},
                {"type": "number"},
                {"type": "boolean"},
            ]
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LivePush(_Model):
    """A push of a source's values: replaces the whole set (the body of ``PUT /live/{source}``)."""

    source: SourceName
    values: dict[ValueName, LiveValue] = Field(
        max_length=MAX_VALUES_PER_SOURCE,
        description="Value name -> string, number or boolean; replaces every earlier value.",
    )
    max_age_seconds: int = Field(
        gt=0,
        le=MAX_AGE_LIMIT_SECONDS,
        strict=True,
        description="Past this age (from the push) the source is stale: conditions on it are "
        "false, templates do not see it and variants that require it are skipped.",
    )

    @model_validator(mode="after")
    def _bounded_size(self) -> LivePush:
        if len(_values_json(self.values)) > MAX_SOURCE_BYTES:
            raise ValueError(f"the values take more than {MAX_SOURCE_BYTES} bytes as JSON")
        return self


def _values_json(values: Mapping[str, LiveScalar]) -> str:
    return json.dumps(values, separators=(",", ":"))


class LiveSource(_Model):
    """A stored source: its values, freshness limit and the time of the push."""

    source: str
    values: dict[str, LiveValue]
    max_age_seconds: int
    updated_at: dt.datetime

    def age_seconds(self, now: dt.datetime) -> float:
        """Seconds since the push (negative if another clock ran ahead)."""
        return (now - self.updated_at).total_seconds()

    def fresh(self, now: dt.datetime) -> bool:
        """Whether the values may still be used at ``now``."""
        return self.age_seconds(now) <= self.max_age_seconds


class LiveSourceAnswer(_Model):
    """A stored source as the API shows it, with its freshness at the time of the request."""

    source: str
    values: dict[str, LiveValue]
    max_age_seconds: int
    updated_at: dt.datetime
    fresh: bool
    age_seconds: float

    @classmethod
    def of(cls, stored: LiveSource, now: dt.datetime) -> LiveSourceAnswer:
        """``stored`` with its age and freshness at ``now``."""
        return cls(
            **stored.model_dump(),
            fresh=stored.fresh(now),
            age_seconds=round(stored.age_seconds(now), 3),
        )


class LiveFields(dict[str, Mapping[str, LiveScalar]]):
    """The fresh sources as templates read them: ``{{ live.flights.delay }}``. A stale or
    unknown source reads as an empty mapping, so its values render empty (or their
    ``| default(…)``) instead of failing the template."""

    def __missing__(self, source: str) -> Mapping[str, LiveScalar]:
        return {}


@dataclass(frozen=True)
class LiveValues:
    """Every stored source, as one worker holds them; freshness is judged per open."""

    sources: Mapping[str, LiveSource] = field(default_factory=dict)

    def fresh(self, now: dt.datetime) -> LiveFields:
        """The values of the sources that are fresh at ``now``, by source."""
        return LiveFields(
            {name: dict(s.values) for name, s in self.sources.items() if s.fresh(now)}
        )


NO_LIVE_VALUES = LiveValues()
