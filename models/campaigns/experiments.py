"""Experiments on a block: A/B/n splits, holdout, small-group pilots, significance, and a
Thompson-sampling bandit on human clicks per human open."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Totals = Mapping[str, tuple[int, int]]
"""Per arm: (human opens, human clicks)."""


class Experiment(BaseModel):
    """How a block's equal-priority variants share traffic, and who is held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["split", "bandit"] = Field(
        "split",
        description="split: fixed weights; bandit: Thompson sampling shifts traffic to the "
        "variant with the best human clicks per human open.",
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


def thompson_choice(
    arms: Sequence[str], totals: Totals, rng: random.Random, min_exploration: float
) -> str:
    """Pick an arm: at random with probability ``min_exploration``, else the best draw from
    each arm's Beta(1 + clicks, 1 + opens - clicks) posterior."""
    if rng.random() < min_exploration:
        return arms[rng.randrange(len(arms))]
    best, best_draw = arms[0], -1.0
    for arm in arms:
        opens, clicks = totals.get(arm, (0, 0))
        clicks = min(clicks, opens)
        draw = rng.betavariate(1 + clicks, 1 + opens - clicks)
        if draw > best_draw:
            best, best_draw = arm, draw
    return best


@dataclass(frozen=True)
class Comparison:
    """An arm against the control: rates, a two-proportion z-test and P(arm beats control)."""

    arm: str
    control: str
    arm_rate: float | None
    control_rate: float | None
    lift: float | None
    z: float | None
    p_value: float | None
    probability_to_beat_control: float | None


def two_proportion_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> tuple[float, float] | None:
    """(z, two-sided p) for rate A vs rate B with a pooled standard error; None if undefined."""
    if trials_a == 0 or trials_b == 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    error = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if error == 0:
        return None
    z = (successes_a / trials_a - successes_b / trials_b) / error
    return z, math.erfc(abs(z) / math.sqrt(2))


def probability_to_beat(
    arm: tuple[int, int], control: tuple[int, int], draws: int = 20000, seed: int = 7
) -> float:
    """P(arm's rate > control's rate) under Beta(1,1) priors, by seeded Monte Carlo."""
    rng = random.Random(seed)
    (arm_opens, arm_clicks), (ctl_opens, ctl_clicks) = arm, control
    arm_clicks, ctl_clicks = min(arm_clicks, arm_opens), min(ctl_clicks, ctl_opens)
    wins = sum(
        rng.betavariate(1 + arm_clicks, 1 + arm_opens - arm_clicks)
        > rng.betavariate(1 + ctl_clicks, 1 + ctl_opens - ctl_clicks)
        for _ in range(draws)
    )
    return wins / draws


def compare(arm: str, control: str, totals: Totals) -> Comparison:
    """Compare ``arm`` with ``control`` on unique clicks per unique open."""
    arm_opens, arm_clicks = totals.get(arm, (0, 0))
    ctl_opens, ctl_clicks = totals.get(control, (0, 0))
    arm_rate = arm_clicks / arm_opens if arm_opens else None
    ctl_rate = ctl_clicks / ctl_opens if ctl_opens else None
    lift = (arm_rate - ctl_rate) / ctl_rate if arm_rate is not None and ctl_rate else None
    test = two_proportion_test(arm_clicks, arm_opens, ctl_clicks, ctl_opens)
    beat = (
        probability_to_beat((arm_opens, arm_clicks), (ctl_opens, ctl_clicks))
        if arm_opens and ctl_opens
        else None
    )
    return Comparison(
        arm=arm,
        control=control,
        arm_rate=arm_rate,
        control_rate=ctl_rate,
        lift=lift,
        z=test[0] if test else None,
        p_value=test[1] if test else None,
        probability_to_beat_control=beat,
    )


def split_point(recipient_id: str, campaign_id: str, block_id: str, purpose: str = "") -> float:
    """A stable number in [0, 1) per recipient, block and purpose (split, holdout, pilot)."""
    material = f"{recipient_id}\x00{campaign_id}\x00{block_id}\x00{purpose}".encode()
    digest = hashlib.sha256(material).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
