"""Experiments: the bandit converges, significance is computed correctly."""

from __future__ import annotations

import random

import pytest

from models.campaigns.experiments import (
    compare,
    probability_to_beat,
    thompson_choice,
    two_proportion_test,
)


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


def test_two_proportion_test_matches_a_known_value() -> None:
    result = two_proportion_test(120, 1000, 90, 1000)
    assert result is not None
    z, p = result
    assert z == pytest.approx(2.19, abs=0.01)
    assert p == pytest.approx(0.0285, abs=0.001)
    assert two_proportion_test(1, 0, 1, 10) is None


def test_probability_to_beat() -> None:
    assert probability_to_beat((1000, 150), (1000, 100)) > 0.99
    assert probability_to_beat((1000, 100), (1000, 150)) < 0.01
    assert 0.4 < probability_to_beat((50, 5), (50, 5)) < 0.6


def test_compare_reports_lift_against_control() -> None:
    comparison = compare("b", "_fallback", {"b": (1000, 120), "_fallback": (1000, 90)})
    assert comparison.arm_rate == pytest.approx(0.12)
    assert comparison.lift == pytest.approx(0.12 / 0.09 - 1)
    assert comparison.p_value is not None
    assert comparison.p_value < 0.05
