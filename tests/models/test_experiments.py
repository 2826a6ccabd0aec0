"""Experiments: the bandit converges and keeps exploring (comparing the arms:
test_comparisons.py)."""

from __future__ import annotations

import random

from models.campaigns.experiments import thompson_choice


def test_bandit_converges_to_the_best_arm() -> None:
    true_rates = {"a": 0.04, "b": 0.10, "c": 0.06}
    totals = {arm: (0, 0) for arm in true_rates}
    world = random.Random(42)
    chooser = random.Random(7)
    picks_late = {arm: 0 for arm in true_rates}
    for round_number in range(6000):
        arm = thompson_choice(list(true_rates), totals, chooser, min_exploration=0.05)
        opens, clicks = totals[arm]
        totals[arm] = (opens + 1, clicks + (world.random() < true_rates[arm]))
        if round_number >= 5000:
            picks_late[arm] += 1
    assert max(picks_late, key=lambda a: picks_late[a]) == "b"
    assert picks_late["b"] > 700  # most of the last 1,000 rounds
    assert min(totals[a][0] for a in true_rates) > 50  # exploration kept every arm alive


def test_minimum_exploration_share() -> None:
    totals = {"best": (10_000, 5_000), "worst": (10_000, 10)}
    rng = random.Random(1)
    picks = [thompson_choice(["best", "worst"], totals, rng, 0.2) for _ in range(5000)]
    assert 0.07 < picks.count("worst") / len(picks) < 0.13  # half of the 20% exploration
