"""Experiments on a block: A/B/n splits, holdout, small-group pilots, and a Thompson-sampling
bandit on the block's metric: clickers, converters or revenue per recipient shown. Comparing the
arms is ``models.measurement.comparisons`` (rates) and ``models.measurement.revenue_tests``
(revenue)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Metric = Literal["click_rate", "conversion_rate", "revenue_per_recipient"]
METRICS: tuple[Metric, ...] = ("click_rate", "conversion_rate", "revenue_per_recipient")


@dataclass(frozen=True)
class ArmOutcome:
    """What an arm achieved to date: exact distinct recipients shown it, clickers and
    converters (credited by a click), and the revenue credited by a click with its sum of
    squares per converter (in the reporting currency)."""

    recipients: int = 0
    clickers: int = 0
    converters: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


Totals = Mapping[str, ArmOutcome]
"""Per arm, its outcome to date."""
HOLDOUT_ARM = "holdout"
"""The arm of the recipients an experiment holds out (they see the generic fallback)."""


class Experiment(BaseModel):
    """How a block's equal-priority variants share traffic, and who is held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["split", "bandit"] = Field(
        "split",
        description="split: fixed weights; bandit: Thompson sampling shifts traffic to the "
        "variant with the best `metric`.",
    )
    metric: Metric = Field(
        "click_rate",
        description="What the experiment optimises and its reports compare: `click_rate` "
        "(clickers per recipient shown), `conversion_rate` (converters credited by a click per "
        "recipient shown) or `revenue_per_recipient` (revenue credited by a click per "
        "recipient shown).",
    )
    revenue_effect: float = Field(
        0.5,
        gt=0,
        le=1_000_000,
        description="With `revenue_per_recipient`: the difference in revenue per recipient "
        "(reporting currency) that the always-valid test is tuned to find fastest, set before "
        "the experiment starts (the spread of its mSPRT's mixing distribution). Any value keeps "
        "the test valid when it is read every day; changing it mid-experiment does not.",
    )
    holdout: float = Field(
        0.0, ge=0, le=0.5, description="Share of recipients who always get the generic fallback."
    )
    pilot: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the other recipients who see targeted content at all (a pilot).",
    )
    min_exploration: float = Field(
        0.1, ge=0, le=1, description="Bandit: share of decisions that pick an arm at random."
    )
    control: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The arm every other arm is compared with in reports: a variant id, or "
        "`holdout`. Default: the holdout when the experiment holds recipients out, else the "
        "block's first-created variant.",
    )


def thompson_choice(
    arms: Sequence[str],
    totals: Totals,
    rng: random.Random,
    min_exploration: float,
    metric: Metric = "click_rate",
) -> str:
    """Pick an arm: at random with probability ``min_exploration``, else the best draw from
    each arm's posterior: Beta(1 + successes, 1 + recipients - successes) for a rate (clickers
    or converters); for revenue per recipient, a normal around the arm's mean revenue per
    recipient with the variance of that mean (with the arms' pooled variance and one
    pseudo-recipient at the pooled mean as a prior, so that an arm without revenue yet is still
    drawn)."""
    if rng.random() < min_exploration:
        return arms[rng.randrange(len(arms))]
    draw = _revenue_draws(arms, totals) if metric == "revenue_per_recipient" else None
    best, best_draw = arms[0], -math.inf
    for arm in arms:
        outcome = totals.get(arm, ArmOutcome())
        if draw is not None:
            mean, spread = draw[arm]
            value = rng.gauss(mean, spread)
        else:
            successes = outcome.clickers if metric == "click_rate" else outcome.converters
            successes = min(successes, outcome.recipients)
            value = rng.betavariate(1 + successes, 1 + outcome.recipients - successes)
        if value > best_draw:
            best, best_draw = arm, value
    return best


def _revenue_draws(arms: Sequence[str], totals: Totals) -> dict[str, tuple[float, float]]:
    """Per arm, the mean and standard deviation of the normal its draw comes from."""
    outcomes = [totals.get(arm, ArmOutcome()) for arm in arms]
    recipients = sum(o.recipients for o in outcomes)
    revenue = sum(o.revenue for o in outcomes)
    pooled_mean = revenue / recipients if recipients else 0.0
    squares = sum(o.revenue_sq for o in outcomes)
    pooled_var = squares / recipients - pooled_mean**2 if recipients else 0.0
    prior_var = max(pooled_var, pooled_mean**2, 1e-9)
    draws = {}
    for arm, outcome in zip(arms, outcomes, strict=True):
        n = outcome.recipients + 1  # the pseudo-recipient at the pooled mean
        mean = (outcome.revenue + pooled_mean) / n
        if outcome.recipients >= 2:
            own = (
                outcome.revenue_sq / outcome.recipients
                - (outcome.revenue / outcome.recipients) ** 2
            )
            variance = max(own, 0.0) if outcome.recipients >= 30 else max(own, prior_var)
        else:
            variance = prior_var
        draws[arm] = (mean, math.sqrt(max(variance, 1e-12) / n))
    return draws


def split_point(recipient_id: str, campaign_id: str, block_id: str, purpose: str = "") -> float:
    """A stable number in [0, 1) per recipient, block and purpose (split, holdout, pilot)."""
    material = f"{recipient_id}\x00{campaign_id}\x00{block_id}\x00{purpose}".encode()
    digest = hashlib.sha256(material).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
