"""Experiments: the bandit converges and keeps exploring (comparing the arms:
test_comparisons.py)."""

from __future__ import annotations

import random

from models.campaigns.experiments import ArmOutcome, thompson_choice


def test_bandit_converges_to_the_best_arm() -> None:
    true_rates = {"a": 0.04, "b": 0.10, "c": 0.06}
    totals = {arm: ArmOutcome() for arm in true_rates}
    world = random.Random(42)
    chooser = random.Random(7)
    picks_late = {arm: 0 for arm in true_rates}
    for round_number in range(6000):
        arm = thompson_choice(list(true_rates), totals, chooser, min_exploration=0.05)
        shown = totals[arm]
        clicked = world.random() < true_rates[arm]
        totals[arm] = ArmOutcome(shown.recipients + 1, shown.clickers + clicked)
        if round_number >= 5000:
            picks_late[arm] += 1
    assert max(picks_late, key=lambda a: picks_late[a]) == "b"
    assert picks_late["b"] > 700  # most of the last 1,000 rounds
    assert min(totals[a].recipients for a in true_rates) > 50  # exploration kept every arm alive


def test_minimum_exploration_share() -> None:
    totals = {"best": ArmOutcome(10_000, 5_000), "worst": ArmOutcome(10_000, 10)}
    rng = random.Random(1)
    picks = [thompson_choice(["best", "worst"], totals, rng, 0.2) for _ in range(5000)]
    assert 0.07 < picks.count("worst") / len(picks) < 0.13  # half of the 20% exploration


def test_a_conversion_bandit_learns_from_converters_not_clicks() -> None:
    # "clicky" gets the clicks, "buys" the orders: each metric picks its own winner
    totals = {
        "clicky": ArmOutcome(5_000, clickers=900, converters=20),
        "buys": ArmOutcome(5_000, clickers=300, converters=150),
    }
    rng = random.Random(4)
    by_clicks = [thompson_choice(["buys", "clicky"], totals, rng, 0.0) for _ in range(300)]
    by_orders = [
        thompson_choice(["buys", "clicky"], totals, rng, 0.0, "conversion_rate") for _ in range(300)
    ]
    assert by_clicks.count("clicky") == 300
    assert by_orders.count("buys") == 300


def test_a_revenue_bandit_converges_to_the_arm_that_earns_most_per_recipient() -> None:
    # "many" converts more often with small orders; "rich" less often with large ones and earns
    # more per recipient: the revenue bandit must end on "rich", a conversion bandit on "many"
    world = random.Random(9)
    chooser = random.Random(10)
    worlds = {"many": (0.05, 20.0), "rich": (0.02, 120.0)}
    totals = {arm: ArmOutcome() for arm in worlds}
    late = {arm: 0 for arm in worlds}
    for round_number in range(8000):
        arm = thompson_choice(sorted(worlds), totals, chooser, 0.05, "revenue_per_recipient")
        rate, scale = worlds[arm]
        spent = scale * world.lognormvariate(0, 1.0) if world.random() < rate else 0.0
        seen = totals[arm]
        totals[arm] = ArmOutcome(
            seen.recipients + 1,
            seen.clickers,
            seen.converters + (spent > 0),
            seen.revenue + spent,
            seen.revenue_sq + spent * spent,
        )
        if round_number >= 7000:
            late[arm] += 1
    assert late["rich"] > 700
    by_conversions = [
        thompson_choice(sorted(worlds), totals, chooser, 0.0, "conversion_rate") for _ in range(50)
    ]
    assert totals["many"].converters / totals["many"].recipients > (
        totals["rich"].converters / totals["rich"].recipients
    )
    assert by_conversions.count("many") > 40


def test_a_revenue_bandit_still_draws_an_arm_without_revenue_yet() -> None:
    totals = {"old": ArmOutcome(200, 0, 10, 800.0, 100_000.0), "new": ArmOutcome()}
    rng = random.Random(1)
    picks = [
        thompson_choice(["new", "old"], totals, rng, 0.0, "revenue_per_recipient")
        for _ in range(2000)
    ]
    assert picks.count("new") > 100  # the prior keeps it in play
