"""When a predictive score is too old to use: each model has a maximum age.

A score older than its model's maximum age (by its ``computed_at``) is treated as missing, both
at open time and in audience exports. Ages come from config: a default for every model, and
overrides by model name or by name prefix (``affinity:*``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from models.recipients.upserts import ScoreValue


@dataclass(frozen=True)
class ScoreMaxAges:
    """The maximum age per model: exact names first, then the longest matching prefix."""

    default: dt.timedelta
    by_model: Mapping[str, dt.timedelta] = field(default_factory=dict)
    by_prefix: tuple[tuple[str, dt.timedelta], ...] = ()

    @classmethod
    def parse(cls, default_hours: float, text: str) -> ScoreMaxAges:
        """From ``travel_propensity=24,affinity:*=72`` (hours); ValueError naming a bad part."""
        by_model: dict[str, dt.timedelta] = {}
        by_prefix: list[tuple[str, dt.timedelta]] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, _, hours = part.rpartition("=")
            try:
                age = dt.timedelta(hours=float(hours))
            except ValueError:
                age = dt.timedelta(0)
            name = name.strip()
            if not name or age <= dt.timedelta(0):
                raise ValueError(f"{part!r} is not MODEL=positive-hours, e.g. churn_risk=24")
            if name.endswith("*"):
                by_prefix.append((name[:-1], age))
            else:
                by_model[name] = age
        by_prefix.sort(key=lambda entry: -len(entry[0]))
        return cls(dt.timedelta(hours=default_hours), by_model, tuple(by_prefix))

    def max_age(self, model: str) -> dt.timedelta:
        """The maximum age of ``model``'s scores."""
        if (age := self.by_model.get(model)) is not None:
            return age
        for prefix, age in self.by_prefix:
            if model.startswith(prefix):
                return age
        return self.default

    def is_fresh(self, model: str, score: ScoreValue, now: dt.datetime) -> bool:
        """Whether ``score`` may be used at ``now`` (a score without a time is stale)."""
        if score.computed_at is None:
            return False
        return now - score.computed_at <= self.max_age(model)

    def fresh_values(self, scores: Mapping[str, ScoreValue], now: dt.datetime) -> dict[str, float]:
        """The values of the scores that are fresh at ``now``, by model name."""
        return {
            model: score.value
            for model, score in scores.items()
            if self.is_fresh(model, score, now)
        }


NO_LIMIT = ScoreMaxAges(dt.timedelta.max)
"""Every score counts, however old (for callers that do not apply config)."""
