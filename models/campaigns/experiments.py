"""Experiments on a block: A/B/n splits, holdout, small-group pilots, and a Thompson-sampling
bandit on clickers per recipient shown (the primary metric). Comparing the arms is
``models.measurement.comparisons``."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Totals = Mapping[str, tuple[int, int]]
"""Per arm: (recipients shown the arm, clickers), exact distinct counts."""
HOLDOUT_ARM = "holdout"
"""The arm of the recipients an experiment holds out (they see the generic fallback)."""


class Experiment(BaseModel):
    """How a block's equal-priority variants share traffic, and who is held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["split", "bandit"] = Field(
        "split",
        description="split: fixed weights; bandit: Thompson sampling shifts traffic to the "
        "variant with the best click rate (clickers per recipient shown).",
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
    arms: Sequence[str], totals: Totals, rng: random.Random, min_exploration: float
) -> str:
    """Pick an arm: at random with probability ``min_exploration``, else the best draw from
    each arm's Beta(1 + clickers, 1 + recipients - clickers) posterior."""
    if rng.random() < min_exploration:
        return arms[rng.randrange(len(arms))]
    best, best_draw = arms[0], -1.0
    for arm in arms:
        recipients, clickers = totals.get(arm, (0, 0))
        clickers = min(clickers, recipients)
        draw = rng.betavariate(1 + clickers, 1 + recipients - clickers)
        if draw > best_draw:
            best, best_draw = arm, draw
    return best


def split_point(recipient_id: str, campaign_id: str, block_id: str, purpose: str = "") -> float:
    """A stable number in [0, 1) per recipient, block and purpose (split, holdout, pilot)."""
    material = f"{recipient_id}\x00{campaign_id}\x00{block_id}\x00{purpose}".encode()
    digest = hashlib.sha256(material).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
