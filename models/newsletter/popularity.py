"""Learned popularity: how well each newsletter item does among similar recipients, as a prior
for the ranking.

The figures are Blanco's own exact counts (``models.measurement.arm_counts``,
``models.conversions.money_counts``): per persona (the recipient's ``persona`` attribute), the
recipients each item was shown to in a slot, those who clicked it, and those who bought after
clicking it; recipients without a persona learn from everyone's. An item's factor compares its
click rate and conversion rate, each smoothed towards the persona's average by ``SMOOTHING``
pseudo-recipients (so an item shown to few says little), with the persona's average:

    factor = (smoothed click rate / average click rate × smoothed conversion rate / average
              conversion rate) ^ weight,   within [MIN_FACTOR, MAX_FACTOR]

An item without figures, or a persona without clicks (or orders) yet, has factor 1 on that
part. Workers hold each persona's figures for ``REFRESH_SECONDS`` and read them again in the
background, so the prior is at most an hour old and a ranking never waits for it but once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from models.conversions.money_counts import read_money
from models.held_values import HeldValues
from models.measurement.arm_counts import EXPERIMENT_SCOPE, persona_scope, read_arm_counts
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX
from models.storage.batch import UNAVAILABLE, NodeGuard

SMOOTHING = 100.0
MIN_FACTOR, MAX_FACTOR = 0.25, 4.0
REFRESH_SECONDS = 3600.0


@dataclass(frozen=True)
class ItemFigures:
    """One item's figures among a persona's recipients, over every slot position."""

    shown: int = 0
    clickers: int = 0
    converters: int = 0


@dataclass(frozen=True)
class Popularity:
    """Every item's figures among one persona's recipients."""

    items: Mapping[str, ItemFigures] = field(default_factory=dict)

    @cached_property
    def totals(self) -> ItemFigures:
        """Every item's figures added up."""
        return ItemFigures(
            sum(f.shown for f in self.items.values()),
            sum(f.clickers for f in self.items.values()),
            sum(f.converters for f in self.items.values()),
        )

    def factor(self, item_id: str, weight: float) -> float:
        """The item's weight factor (see the module docstring); 1 with ``weight`` 0."""
        if not weight or not self.items:
            return 1.0
        totals = self.totals
        shown = totals.shown
        found = self.items.get(item_id, ItemFigures())
        ratio = 1.0
        for successes, total in (
            (found.clickers, totals.clickers),
            (found.converters, totals.converters),
        ):
            if shown and total:
                average = total / shown
                smoothed = (successes + SMOOTHING * average) / (found.shown + SMOOTHING)
                ratio *= smoothed / average
        return float(min(MAX_FACTOR, max(MIN_FACTOR, ratio**weight)))


NO_POPULARITY = Popularity()


def read_popularity(
    client: Any, campaign_id: str, persona: str | None, guard: NodeGuard | None = None
) -> Popularity:
    """The items' figures among ``persona``'s recipients (everyone's without a persona)."""
    scope = persona_scope(persona) if persona else EXPERIMENT_SCOPE
    arms = read_arm_counts(client, campaign_id, scope, guard=guard)
    money = read_money(client, campaign_id, scope, guard=guard)
    summed: dict[str, list[int]] = {}
    for block, block_arms in arms.items():
        if not block.startswith(SLOT_BLOCK_PREFIX):
            continue
        for item, counts in block_arms.items():
            figures = summed.setdefault(item, [0, 0, 0])
            figures[0] += counts.recipients
            figures[1] += counts.clickers
    for block, block_money in money.items():
        if not block.startswith(SLOT_BLOCK_PREFIX):
            continue
        for (basis, item), credited in block_money.items():
            if basis == "click" and item in summed:
                summed[item][2] += credited.converters
    return Popularity({item: ItemFigures(*figures) for item, figures in summed.items()})


class CachedPopularity:
    """``read_popularity`` per (campaign, persona), held ``seconds`` and read again in the
    background (``models.held_values``); a failed first read answers no prior, held for nothing,
    so the next ranking tries again."""

    def __init__(
        self,
        client: Any,
        guard: NodeGuard | None = None,
        seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._held: HeldValues[tuple[str, str | None], Popularity] = HeldValues(
            lambda key: read_popularity(client, *key, guard=guard), seconds
        )

    def __call__(self, campaign_id: str, persona: str | None) -> Popularity:
        try:
            return self._held((campaign_id, persona))
        except UNAVAILABLE:
            return NO_POPULARITY
