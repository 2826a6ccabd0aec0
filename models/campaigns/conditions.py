"""Targeting conditions: declarative JSON, validated by pydantic, evaluated without ``eval``.

A condition is one JSON object whose first key names its kind:

- ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``: combinators;
- ``{"attr": "country", "eq": "NL"}``: a profile attribute compared with ``eq``, ``ne``, ``in``,
  ``not_in``, ``gt``, ``gte``, ``lt``, ``lte`` (several bounds make a range), or ``exists``;
  ``"updated_within_days": 365`` also requires its source to have written in that many days;
- ``{"score": "travel_propensity", "gte": 0.7}``: a predictive score threshold or ``exists``;
- ``{"segment": "champions"}``: segment membership;
- ``{"time": {"tz": "Europe/Amsterdam", "weekdays": ["sat", "sun"], "start": "08:00",
  "end": "12:00", "from": "...", "until": "..."}}``: a time window (``"tz": "recipient"`` uses the
  profile's ``time_zone``);
- ``{"client": ["gmail_proxy", "apple_mpp"]}`` and ``{"device": ["mobile"]}``: who fetched;
- ``{"event": "cs_contact", "within_days": 7}``: a recent customer event of that type;
- ``{"seen_within_days": 90}``: the recipient's latest customer event or transaction is that
  recent;
- ``{"live": "flights.kl123_delay", "gt": 0}``: a value of a fresh live source (pushed by API,
  ``models.campaigns.live_data``), with the attribute operators; a stale source counts as missing.

A comparison against a missing value, or a value of another type, is simply false.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from models.campaigns.live_data import LIVE_PATH_PATTERN
from renderers.time_zones import time_zone

Scalar = str | int | float | bool
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CONDITION_ITEMS = 100
MAX_CONDITION_DEPTH = 32
"""Most levels of ``all``, ``any`` and ``not`` one condition may nest (the innermost test
counts as a level): far above real use, far below what the parsers can read back."""


@dataclass(frozen=True)
class Audience:
    """What the conditions look at: the recipient's data and the moment of the request."""

    now: dt.datetime
    profile: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    client: str = "unknown"
    device: str = "unknown"
    events: Mapping[str, dt.datetime] = field(default_factory=dict)
    """The latest time of each recent customer event type."""
    last_seen: dt.datetime | None = None
    """The time of the latest customer event or transaction."""
    attributes_updated: Mapping[str, dt.datetime] = field(default_factory=dict)
    """How fresh each profile attribute is: when its source last wrote (absent: not known)."""
    live: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)
    """The values of the live sources that are fresh at ``now``, by source."""


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def matches(self, audience: Audience) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class AllOf(_Condition):
    all: list[NestedCondition] = Field(max_length=MAX_CONDITION_ITEMS)

    def matches(self, audience: Audience) -> bool:
        return all(c.matches(audience) for c in self.all)


class AnyOf(_Condition):
    any: list[NestedCondition] = Field(min_length=1, max_length=MAX_CONDITION_ITEMS)

    def matches(self, audience: Audience) -> bool:
        return any(c.matches(audience) for c in self.any)


class Not(_Condition):
    not_: NestedCondition = Field(alias="not")

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    def matches(self, audience: Audience) -> bool:
        return not self.not_.matches(audience)


def _compare(value: Any, op: str, operand: Any) -> bool:
    """One comparison; values of incomparable types never match."""
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "not_in":
        return value not in operand
    number = _number(value)
    limit = _number(operand)
    if number is None or limit is None:
        if isinstance(value, str) and isinstance(operand, str):  # ISO dates compare as text
            number, limit = value, operand  # type: ignore[assignment]
        else:
            return False
    return {
        "gt": number > limit,  # type: ignore[operator]
        "gte": number >= limit,  # type: ignore[operator]
        "lt": number < limit,  # type: ignore[operator]
        "lte": number <= limit,  # type: ignore[operator]
    }[op]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


_OPERATOR_FIELDS = (
    ("eq", "eq"),
    ("ne", "ne"),
    ("in", "in_"),
    ("not_in", "not_in"),
    ("gt", "gt"),
    ("gte", "gte"),
    ("lt", "lt"),
    ("lte", "lte"),
)
"""Each comparison operator and the field that holds its operand."""


class _Comparison(_Condition):
    """Shared operators of attribute and score conditions."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in", max_length=1000)
    not_in: list[Scalar] | None = Field(None, max_length=1000)
    gt: float | str | None = None
    gte: float | str | None = None
    lt: float | str | None = None
    lte: float | str | None = None
    exists: bool | None = None

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    _OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte")

    _NEEDS: ClassVar[str] = "needs an operator: eq, ne, in, not_in, gt, gte, lt, lte or exists"

    @model_validator(mode="after")
    def _needs_an_operator(self) -> _Comparison:
        if not self._operators() and self.exists is None and not self._other_tests():
            raise ValueError(self._NEEDS)
        return self

    def _other_tests(self) -> bool:
        """Whether the condition tests something besides the operators (a subclass's own)."""
        return False

    def _operators(self) -> list[tuple[str, Any]]:
        """(operator, operand) of every operator set, worked out once (the model is frozen;
        every open evaluates it)."""
        found: list[tuple[str, Any]] | None = self.__dict__.get("_operators_set")
        if found is None:
            found = [
                (op, value)
                for op, name in _OPERATOR_FIELDS
                if (value := getattr(self, name)) is not None
            ]
            self.__dict__["_operators_set"] = found  # a cache, not a field: bypasses frozen
        return found

    def _check(self, present: bool, value: Any) -> bool:
        if self.exists is not None and present != self.exists:
            return False
        if not present:
            return not self._operators()
        return all(_compare(value, op, operand) for op, operand in self._operators())


MAX_FRESHNESS_DAYS = 3650


class AttributeCondition(_Comparison):
    attr: str = Field(min_length=1, max_length=64)
    updated_within_days: float | None = Field(
        None,
        gt=0,
        le=MAX_FRESHNESS_DAYS,
        description="The attribute's source must have written within this many days (by the "
        "upsert's updated_at, else its time); an attribute without a known source is not fresh.",
    )

    _NEEDS: ClassVar[str] = (
        "needs an operator: eq, ne, in, not_in, gt, gte, lt, lte, exists or updated_within_days"
    )

    @model_validator(mode="after")
    def _fresh_means_present(self) -> AttributeCondition:
        if self.updated_within_days is not None and self.exists is False:
            raise ValueError("updated_within_days needs the attribute; drop exists: false")
        return self

    def _other_tests(self) -> bool:
        return self.updated_within_days is not None

    def matches(self, audience: Audience) -> bool:
        value = audience.profile.get(self.attr)
        present = value is not None
        if self.updated_within_days is not None:
            written = audience.attributes_updated.get(self.attr)
            if not present or written is None:
                return False
            if audience.now - written > dt.timedelta(days=self.updated_within_days):
                return False
        return self._check(present, value)


class ScoreCondition(_Comparison):
    score: str = Field(min_length=1, max_length=64)

    def matches(self, audience: Audience) -> bool:
        present = self.score in audience.scores
        return self._check(present, audience.scores.get(self.score))


class LiveCondition(_Comparison):
    """A value of a live source, ``<source>.<value>``; a stale or missing source (or value)
    is missing, so only ``exists: false`` matches it."""

    live: str = Field(
        pattern=LIVE_PATH_PATTERN,
        max_length=129,
        description="`<source>.<value>`, e.g. `flights.kl123_delay`.",
    )

    def matches(self, audience: Audience) -> bool:
        source, _, name = self.live.partition(".")
        value = audience.live.get(source, {}).get(name)
        return self._check(value is not None, value)


class SegmentCondition(_Condition):
    segment: str = Field(min_length=1, max_length=64)

    def matches(self, audience: Audience) -> bool:
        return self.segment in audience.segments


LocalTime = Annotated[
    dt.time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
            r"(Z|[+-][0-9]{2}:[0-9]{2})?$",
            "description": "A time of day on the local clock, HH:MM or HH:MM:SS (an offset, "
            "when given, is kept but not used).",
        }
    ),
]
"""A time of day on the local clock: JSON Schema's ``format: time`` would demand an offset."""


class TimeWindow(BaseModel):
    """A window in a time zone: weekdays, a daily start/end and an absolute from/until."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    tz: str = "UTC"
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    start: LocalTime | None = None
    end: LocalTime | None = None
    from_: dt.datetime | None = Field(None, alias="from")
    until: dt.datetime | None = None

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        if tz != "recipient":
            _zone(tz)
        return tz

    @field_validator("from_", "until")
    @classmethod
    def _aware(cls, moment: dt.datetime | None) -> dt.datetime | None:
        if moment is not None and moment.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-12-01T00:00:00+01:00")
        return moment


def _zone(name: str) -> ZoneInfo:
    return time_zone(name)


def recipient_zone(profile: Mapping[str, Any], default: str = "UTC") -> ZoneInfo:
    """The recipient's time zone from the profile's ``time_zone``, else ``default``."""
    name = profile.get("time_zone")
    if isinstance(name, str):
        try:
            return _zone(name)
        except ValueError:
            pass
    return _zone(default)


class TimeCondition(_Condition):
    time: TimeWindow

    def matches(self, audience: Audience) -> bool:
        window = self.time
        if window.from_ and audience.now < window.from_:
            return False
        if window.until and audience.now >= window.until:
            return False
        zone = recipient_zone(audience.profile) if window.tz == "recipient" else _zone(window.tz)
        local = audience.now.astimezone(zone)
        if window.weekdays and WEEKDAYS[local.weekday()] not in window.weekdays:
            return False
        clock = local.time().replace(tzinfo=None)
        if window.start and window.end and window.end < window.start:  # crosses midnight
            return clock >= window.start or clock < window.end
        if window.start and clock < window.start:
            return False
        return not (window.end and clock >= window.end)


class ClientCondition(_Condition):
    client: list[str] = Field(min_length=1, max_length=50)

    def matches(self, audience: Audience) -> bool:
        return audience.client in self.client


class DeviceCondition(_Condition):
    device: list[Literal["mobile", "desktop", "tablet", "unknown"]] = Field(min_length=1)

    def matches(self, audience: Audience) -> bool:
        return audience.device in self.device


MAX_EVENT_LOOKBACK_DAYS = 365


class EventCondition(_Condition):
    event: str = Field(min_length=1, max_length=64)
    within_days: float = Field(MAX_EVENT_LOOKBACK_DAYS, gt=0, le=MAX_EVENT_LOOKBACK_DAYS)

    def matches(self, audience: Audience) -> bool:
        at = audience.events.get(self.event)
        if at is None:
            return False
        return audience.now - at <= dt.timedelta(days=self.within_days)


class SeenCondition(_Condition):
    """The recipient was seen (a customer event or a transaction) within so many days."""

    seen_within_days: float = Field(gt=0, le=MAX_EVENT_LOOKBACK_DAYS)

    def matches(self, audience: Audience) -> bool:
        seen = audience.last_seen
        if seen is None:
            return False
        return audience.now - seen <= dt.timedelta(days=self.seen_within_days)


_KINDS = (
    "all",
    "any",
    "not",
    "attr",
    "score",
    "segment",
    "time",
    "client",
    "device",
    "event",
    "seen_within_days",
    "live",
)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((kind for kind in _KINDS if kind in value), None)
    if isinstance(value, _Condition):
        return _TAG_OF_CLASS.get(type(value))
    return None


NestedCondition = Annotated[
    Union[  # noqa: UP007 - tagged union needs the explicit form
        Annotated[AllOf, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[Not, Tag("not")],
        Annotated[AttributeCondition, Tag("attr")],
        Annotated[ScoreCondition, Tag("score")],
        Annotated[SegmentCondition, Tag("segment")],
        Annotated[TimeCondition, Tag("time")],
        Annotated[ClientCondition, Tag("client")],
        Annotated[DeviceCondition, Tag("device")],
        Annotated[EventCondition, Tag("event")],
        Annotated[SeenCondition, Tag("seen_within_days")],
        Annotated[LiveCondition, Tag("live")],
    ],
    Discriminator(
        _kind,
        custom_error_type="condition_kind",
        custom_error_message="a condition needs one of the keys: " + ", ".join(_KINDS),
    ),
]


def condition_depth_problem(value: Any) -> str | None:
    """Why ``value`` (a condition as JSON or as a model) nests ``all``, ``any`` and ``not``
    deeper than ``MAX_CONDITION_DEPTH`` levels, else None. Iterative, so it can run before
    validation recurses."""
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while pending:
        node, depth, path = pending.pop()
        children = _children(node, path)
        if children and depth == MAX_CONDITION_DEPTH:
            where = "/" + "/".join(str(p) for p in path) if path else "the top"
            return (
                f"conditions may nest all, any and not at most {MAX_CONDITION_DEPTH} levels "
                f"deep; this one goes deeper below {where}"
            )
        pending.extend((child, depth + 1, where) for child, where in children)
    return None


def _children(node: Any, path: tuple[str | int, ...]) -> list[tuple[Any, tuple[str | int, ...]]]:
    """The conditions directly inside a combinator, with their paths."""
    if isinstance(node, AllOf | AnyOf):
        node = node.model_dump(by_alias=True)
    elif isinstance(node, Not):
        return [(node.not_, (*path, "not"))]
    if not isinstance(node, dict):
        return []
    found: list[tuple[Any, tuple[str | int, ...]]] = []
    for key in ("all", "any"):
        items = node.get(key)
        if isinstance(items, list):
            found += [(item, (*path, key, index)) for index, item in enumerate(items)]
    if "not" in node:
        found.append((node["not"], (*path, "not")))
    return found


def _shallow_enough(value: Any) -> Any:
    problem = condition_depth_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Condition = Annotated[NestedCondition, BeforeValidator(_shallow_enough)]
"""A condition as other models hold it: at most ``MAX_CONDITION_DEPTH`` levels deep, so that
every stored document can be read back (pydantic's JSON parser stops at 200 levels)."""

_TAG_OF_CLASS: dict[type[_Condition], str] = {
    AllOf: "all",
    AnyOf: "any",
    Not: "not",
    AttributeCondition: "attr",
    ScoreCondition: "score",
    SegmentCondition: "segment",
    TimeCondition: "time",
    ClientCondition: "client",
    DeviceCondition: "device",
    EventCondition: "event",
    SeenCondition: "seen_within_days",
    LiveCondition: "live",
}

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()
