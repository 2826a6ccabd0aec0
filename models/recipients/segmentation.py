"""Segmentation as pure functions: RFM scores and segments, lifecycle stages and personas.

**RFM.** Customers are recipients with at least one order at or before the moment of the run.
Recency is whole days since the last order (fewer is better), frequency the number of orders,
monetary the sum of the amounts converted into the segmentation currency (amounts in a
currency without a configured rate are left out). Each is scored 1-5 by quintile across all
customers: a value's score is ``1 + floor(5 × p)``, where ``p`` is the share of customers with a
worse value plus half the share with an equal one (its mid-rank percentile). Ties always share a
score, ten distinct values give two customers per score, and a population where everyone is
equal (or of one) scores 3.

The named RFM segment follows from R and from F + M (2-10), checked in this order:

| segment | rule |
|---|---|
| ``new`` | R ≥ 4 and exactly one order |
| ``champions`` | R ≥ 4 and F + M ≥ 8 |
| ``loyal`` | R ≥ 3 and F + M ≥ 6 |
| ``potential_loyalist`` | R ≥ 3 |
| ``at_risk`` | F + M ≥ 6 (R ≤ 2) |
| ``hibernating`` | R = 2 |
| ``lost`` | R = 1 |

**Lifecycle**, first match: ``prospect`` (no order), ``new_customer`` (first order at most
``new_days`` ago), ``active`` (last order at most ``active_days`` ago), ``lapsing`` (last order
at most ``lapsed_days`` ago), ``lapsed``.

**Persona**: the first rule whose condition matches the recipient's profile (with the RFM and
lifecycle attributes just computed), scores and segments; a rule without a condition matches
everyone. With no rules configured, the ``persona`` attribute the data team pushes is kept.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from models.campaigns.conditions import Audience, Condition

RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "at_risk",
    "hibernating",
    "lost",
)
LIFECYCLE_STAGES = ("prospect", "new_customer", "active", "lapsing", "lapsed")
RFM_PREFIX = "rfm:"
LIFECYCLE_PREFIX = "lifecycle:"
PERSONA_PREFIX = "persona:"
OWNED_PREFIXES = (RFM_PREFIX, LIFECYCLE_PREFIX, PERSONA_PREFIX)
"""Segments the job owns: it replaces these and leaves every other segment alone."""
RFM_ATTRIBUTES = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")
LIFECYCLE_ATTRIBUTE = "lifecycle_stage"
PERSONA_ATTRIBUTE = "persona"
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Order:
    """What segmentation needs of a transaction."""

    at: dt.datetime
    amount: Decimal
    currency: str
    refund: bool = False
    """Money paid back: taken off the monetary value, and not an order."""


def orders_from_stored(raw: Mapping[str, str]) -> list[Order]:
    """The orders of a stored transactions hash (order id -> JSON), skipping unreadable ones."""
    orders = []
    for document in raw.values():
        try:
            data = json.loads(document)
            orders.append(
                Order(
                    dt.datetime.fromisoformat(data["at"]),
                    Decimal(data["amount"]),
                    data["currency"],
                    data.get("type") == "refund",
                )
            )
        except (ValueError, KeyError, TypeError, ArithmeticError):
            continue
    return orders


@dataclass(frozen=True)
class CustomerStats:
    """One customer's orders summed up at the moment of the run."""

    orders: int
    first_order_at: dt.datetime
    last_order_at: dt.datetime
    monetary: Decimal

    def recency_days(self, now: dt.datetime) -> int:
        """Whole days since the last order."""
        return max(0, (now - self.last_order_at) // DAY)


def customer_stats(
    orders: Iterable[Order], now: dt.datetime, rates: Mapping[str, Decimal]
) -> CustomerStats | None:
    """The summary of the orders placed at or before ``now``, their refunds netted off the
    monetary value; None for a prospect (no order yet)."""
    so_far = [o for o in orders if o.at <= now]
    placed = [o for o in so_far if not o.refund]
    if not placed:
        return None
    monetary = sum(
        (
            (-o.amount if o.refund else o.amount) * rates[o.currency]
            for o in so_far
            if o.currency in rates
        ),
        Decimal(0),
    )
    return CustomerStats(
        orders=len(placed),
        first_order_at=min(o.at for o in placed),
        last_order_at=max(o.at for o in placed),
        monetary=monetary,
    )


def quintile(value: float, ascending: list[float], higher_is_better: bool = True) -> int:
    """The 1-5 score of ``value`` among ``ascending`` (sorted, containing ``value``):
    ``1 + floor(5 × (worse + equal / 2) / n)``."""
    n = len(ascending)
    if n == 0:
        return 1
    below = bisect.bisect_left(ascending, value)
    above = n - bisect.bisect_right(ascending, value)
    equal = n - below - above
    worse = below if higher_is_better else above
    return min(5, 1 + 5 * (2 * worse + equal) // (2 * n))


@dataclass(frozen=True)
class RfmScores:
    """Quintile scores, 5 the best."""

    recency: int
    frequency: int
    monetary: int


class Population:
    """The customers' recency, frequency and monetary values, sorted, for quintile scores."""

    def __init__(self, stats: Iterable[CustomerStats], now: dt.datetime) -> None:
        self.now = now
        recency: list[float] = []
        frequency: list[float] = []
        monetary: list[float] = []
        for s in stats:
            recency.append(s.recency_days(now))
            frequency.append(s.orders)
            monetary.append(float(s.monetary))
        self.recency = sorted(recency)
        self.frequency = sorted(frequency)
        self.monetary = sorted(monetary)

    def __len__(self) -> int:
        return len(self.recency)

    def scores(self, stats: CustomerStats) -> RfmScores:
        """The customer's quintile scores in this population."""
        return RfmScores(
            recency=quintile(stats.recency_days(self.now), self.recency, higher_is_better=False),
            frequency=quintile(stats.orders, self.frequency),
            monetary=quintile(float(stats.monetary), self.monetary),
        )


def rfm_segment(scores: RfmScores, orders: int) -> str:
    """The named segment (see the module docstring's table)."""
    r, fm = scores.recency, scores.frequency + scores.monetary
    if r >= 4 and orders == 1:
        return "new"
    if r >= 4 and fm >= 8:
        return "champions"
    if r >= 3 and fm >= 6:
        return "loyal"
    if r >= 3:
        return "potential_loyalist"
    if fm >= 6:
        return "at_risk"
    return "hibernating" if r == 2 else "lost"


@dataclass(frozen=True)
class LifecycleThresholds:
    """Days that separate the lifecycle stages (``server.config`` ``lifecycle_*_days``)."""

    new_days: int = 30
    active_days: int = 90
    lapsed_days: int = 180


def lifecycle_stage(
    stats: CustomerStats | None, now: dt.datetime, thresholds: LifecycleThresholds
) -> str:
    """prospect, new_customer, active, lapsing or lapsed."""
    if stats is None:
        return "prospect"
    if now - stats.first_order_at <= dt.timedelta(days=thresholds.new_days):
        return "new_customer"
    since_last = now - stats.last_order_at
    if since_last <= dt.timedelta(days=thresholds.active_days):
        return "active"
    if since_last <= dt.timedelta(days=thresholds.lapsed_days):
        return "lapsing"
    return "lapsed"


PersonaName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,55}$")]


class PersonaRule(BaseModel):
    """Recipients matching ``when`` (everyone when omitted) get ``persona``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: PersonaName
    when: Condition | None = None


class PersonaRules(BaseModel):
    """The persona rule set: the first matching rule wins; none matching means no persona."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[PersonaRule] = Field(max_length=100)


def assign_persona(rules: PersonaRules, audience: Audience) -> str | None:
    """The persona of the first rule that matches ``audience``."""
    for rule in rules.rules:
        if rule.when is None or rule.when.matches(audience):
            return rule.persona
    return None


@dataclass(frozen=True)
class Outcome:
    """What the job writes for one recipient: attributes (None removes one) and its segments
    under the job's prefixes."""

    attributes: dict[str, Any]
    segments: frozenset[str]

    @property
    def rfm_segment(self) -> str | None:
        """The named RFM segment, None for a prospect."""
        value = self.attributes.get("rfm_segment")
        return value if isinstance(value, str) else None


def segment_recipient(
    stats: CustomerStats | None,
    population: Population,
    thresholds: LifecycleThresholds,
    rules: PersonaRules,
    profile: Mapping[str, Any],
    scores: Mapping[str, float],
    segments: frozenset[str],
    events: Mapping[str, dt.datetime] | None = None,
    last_seen: dt.datetime | None = None,
) -> Outcome:
    """RFM, lifecycle and persona of one recipient, from their stats and stored data. The
    persona rules see what open-time conditions see: ``scores`` are the fresh ones, ``events``
    the latest of each type, ``last_seen`` the latest event or order."""
    now = population.now
    attributes: dict[str, Any] = dict.fromkeys(RFM_ATTRIBUTES)
    owned: set[str] = set()
    if stats is not None:
        rfm = population.scores(stats)
        segment = rfm_segment(rfm, stats.orders)
        attributes.update(
            rfm_recency=rfm.recency,
            rfm_frequency=rfm.frequency,
            rfm_monetary=rfm.monetary,
            rfm_segment=segment,
        )
        owned.add(RFM_PREFIX + segment)
    stage = lifecycle_stage(stats, now, thresholds)
    attributes[LIFECYCLE_ATTRIBUTE] = stage
    owned.add(LIFECYCLE_PREFIX + stage)
    if rules.rules:
        audience = Audience(
            now=now,
            profile={**profile, **attributes},
            scores=scores,
            segments=frozenset(s for s in segments if not s.startswith(OWNED_PREFIXES)) | owned,
            events=events or {},
            last_seen=last_seen,
        )
        attributes[PERSONA_ATTRIBUTE] = assign_persona(rules, audience)
        persona = attributes[PERSONA_ATTRIBUTE]
    else:
        persona = profile.get(PERSONA_ATTRIBUTE)
    if isinstance(persona, str) and persona:
        owned.add(PERSONA_PREFIX + persona[:56])
    return Outcome(attributes, frozenset(owned))


def segment_changes(current: Iterable[str], owned: frozenset[str]) -> tuple[set[str], set[str]]:
    """(to remove, to add) to turn ``current`` into a set whose job-owned segments are
    ``owned``, leaving the other segments alone."""
    present = set(current)
    stale = {s for s in present if s.startswith(OWNED_PREFIXES) and s not in owned}
    return stale, set(owned) - present
