"""Arms against a control (docs/measurement.md, "Experiments"): every figure checked against an
independent computation (scipy's integration, its distributions, the definitions), and counts
that make no comparison give a reason instead of raising."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from models.measurement.comparisons import (
    FISHER_BELOW,
    MIXING_SD,
    Rate,
    always_valid_p,
    compare_arms,
    holm,
    minimum_detectable_lift,
    probability_to_beat,
    two_sided_p,
    z_statistic,
)


def integrated_probability_to_beat(arm: Rate, control: Rate) -> float:
    """P(arm > control) by numerical integration of the two Beta posteriors."""
    x = stats.beta(1 + arm.successes, 1 + arm.trials - arm.successes)
    y = stats.beta(1 + control.successes, 1 + control.trials - control.successes)
    low = min(x.ppf(1e-12), y.ppf(1e-12))
    high = max(x.ppf(1 - 1e-12), y.ppf(1 - 1e-12))
    value, _ = integrate.quad(lambda t: x.pdf(t) * y.cdf(t), low, high, limit=500)
    return float(value)


@pytest.mark.parametrize(
    ("arm", "control"),
    [
        (Rate(0, 0), Rate(0, 0)),
        (Rate(1, 1), Rate(1, 2)),
        (Rate(5, 50), Rate(5, 50)),
        (Rate(12, 100), Rate(9, 100)),
        (Rate(150, 1000), Rate(100, 1000)),
        (Rate(30, 3000), Rate(41, 2900)),
        (Rate(480, 10_000), Rate(520, 10_000)),
    ],
)
def test_probability_to_beat_is_the_exact_beta_integral(arm: Rate, control: Rate) -> None:
    exact = probability_to_beat(arm, control)
    assert exact == pytest.approx(integrated_probability_to_beat(arm, control), abs=1e-6)
    assert exact + probability_to_beat(control, arm) == pytest.approx(1.0, abs=1e-9)


def test_equal_arms_are_even_not_a_simulations_estimate() -> None:
    assert probability_to_beat(Rate(0, 0), Rate(0, 0)) == pytest.approx(0.5, abs=1e-12)
    assert probability_to_beat(Rate(7, 70), Rate(7, 70)) == pytest.approx(0.5, abs=1e-12)


def test_z_test_matches_the_textbook_value_and_fisher_takes_small_samples() -> None:
    test, p = two_sided_p(Rate(120, 1000), Rate(90, 1000))
    assert test == "z"
    assert z_statistic(Rate(120, 1000), Rate(90, 1000)) == pytest.approx(2.19, abs=0.01)
    assert p == pytest.approx(0.0285, abs=0.001)
    assert p == pytest.approx(
        stats.norm.sf(abs(z_statistic(Rate(120, 1000), Rate(90, 1000)) or 0)) * 2
    )
    test, p = two_sided_p(Rate(1, 1), Rate(0, 1))  # one opener against one
    assert test == "fisher"
    assert p == pytest.approx(stats.fisher_exact([[1, 0], [0, 1]]).pvalue)
    assert p == pytest.approx(1.0)
    test, p = two_sided_p(Rate(3, 400), Rate(9, 400))  # expected successes 6
    assert test == "z"
    test, p = two_sided_p(Rate(1, 400), Rate(6, 400))  # expected successes 3.5
    assert FISHER_BELOW > 3.5
    assert test == "fisher"
    assert p == pytest.approx(stats.fisher_exact([[1, 399], [6, 394]]).pvalue)


def holm_by_definition(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-value of each hypothesis: the largest, over the hypotheses ranked at
    or before it, of min(1, (m − rank) × p)."""
    m = len(p_values)
    ranked = sorted(p_values)
    return [
        max(min(1.0, (m - k) * ranked[k]) for k in range(ranked.index(p) + 1)) for p in p_values
    ]


def test_holm_adjustment() -> None:
    # the worked example of Holm (1979)-style tutorials: 0.01, 0.04, 0.03, 0.005 with m = 4
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    assert holm([0.2]) == [0.2]
    assert holm([0.5, 0.6, 0.9]) == pytest.approx([1.0, 1.0, 1.0])


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_holm_agrees_with_its_definition(p_values: list[float]) -> None:
    assert holm(p_values) == pytest.approx(holm_by_definition(p_values))


def test_always_valid_p_value_is_the_msprt_ratio() -> None:
    arm, control = Rate(300, 5000), Rate(240, 5000)
    difference = 300 / 5000 - 240 / 5000
    variance = (0.06 * 0.94 + 0.048 * 0.952) / 5000
    tau2 = MIXING_SD**2
    ratio = math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * difference**2 / (2 * variance * (variance + tau2))
    )
    assert always_valid_p(arm, control) == pytest.approx(1 / ratio)
    _, fixed = two_sided_p(arm, control)
    assert fixed < always_valid_p(arm, control) < 1  # the price of peeking
    assert always_valid_p(Rate(50, 1000), Rate(50, 1000)) == 1.0


def test_peeking_daily_at_the_always_valid_p_value_keeps_false_positives_near_alpha() -> None:
    """A/A tests looked at every day for 30 days: stopping at the first p < 0.05 rejects in
    about 5% of them or fewer with the always-valid p-value, far more with the fixed one."""
    generator = np.random.default_rng(11)
    days, per_day, rate, runs = 30, 200, 0.05, 400
    stopped_fixed = stopped_valid = 0
    for _ in range(runs):
        a = generator.binomial(per_day, rate, size=days).cumsum()
        b = generator.binomial(per_day, rate, size=days).cumsum()
        trials = per_day * (1 + np.arange(days))
        looks = [
            (Rate(int(x), int(n)), Rate(int(y), int(n)))
            for x, y, n in zip(a, b, trials, strict=True)
        ]
        stopped_fixed += any(two_sided_p(x, y)[1] < 0.05 for x, y in looks)
        stopped_valid += any(always_valid_p(x, y) < 0.05 for x, y in looks)
    assert stopped_valid / runs <= 0.06
    assert stopped_fixed / runs > 2 * stopped_valid / runs


def test_minimum_detectable_lift_is_the_power_formula() -> None:
    arm, control = Rate(50, 2000), Rate(40, 2000)
    p = 0.02
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    expected = z * math.sqrt(p * (1 - p) * (2 / 2000)) / p
    assert minimum_detectable_lift(arm, control) == pytest.approx(expected)
    assert minimum_detectable_lift(arm, Rate(0, 2000)) is None


def test_compare_arms_against_a_control_with_holm_and_warnings() -> None:
    arms = {
        "holdout": Rate(90, 1000),
        "a": Rate(120, 1000),
        "b": Rate(95, 1000),
        "c": Rate(1, 10),
    }
    found = {c.arm: c for c in compare_arms(arms, "holdout")}
    assert sorted(found) == ["a", "b", "c"]
    a = found["a"]
    assert a.control == "holdout"
    assert (a.arm_successes, a.arm_trials, a.control_successes, a.control_trials) == (
        120,
        1000,
        90,
        1000,
    )
    assert a.lift == pytest.approx(0.12 / 0.09 - 1)
    assert a.test == "z"
    raw = [found[arm].p_value or 0.0 for arm in ("a", "b", "c")]
    adjusted = holm(raw)
    assert [found[arm].p_value_holm for arm in ("a", "b", "c")] == pytest.approx(adjusted)
    assert a.probability_to_beat_control == pytest.approx(
        integrated_probability_to_beat(Rate(120, 1000), Rate(90, 1000)), abs=1e-6
    )
    assert a.warnings == ()
    assert found["c"].test == "fisher"
    (few,) = compare_arms({"a": Rate(9, 5000), "holdout": Rate(30, 5000)}, "holdout")
    assert few.warnings == ("a: 9 successes, fewer than 10: too few to read",)
    assert any("too few to read" in w for w in found["c"].warnings)
    assert any("underpowered" in w for w in found["b"].warnings)
    assert all(c.reason is None for c in found.values())


@pytest.mark.parametrize(
    ("arms", "reason"),
    [
        (
            {"a": Rate(112, 76), "holdout": Rate(10, 100)},
            "a: more successes (112) than trials (76)",
        ),
        ({"a": Rate(5, 100), "holdout": Rate(0, 0)}, "holdout: no trials"),
        ({"a": Rate(5, 100)}, "holdout: no trials"),
        ({"a": Rate(0, 0), "holdout": Rate(3, 30)}, "a: no trials"),
    ],
)
def test_a_comparison_that_cannot_be_made_gives_its_reason(
    arms: dict[str, Rate], reason: str
) -> None:
    (comparison,) = compare_arms(arms, "holdout")
    assert comparison.reason == reason
    assert comparison.p_value is None
    assert comparison.probability_to_beat_control is None
    assert comparison.p_value_holm is None


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "holdout"]),
        st.tuples(st.integers(-3, 400), st.integers(-3, 400)),
        min_size=1,
    )
)
@settings(max_examples=300, deadline=None)
def test_no_counts_make_it_raise(arms: dict[str, tuple[int, int]]) -> None:
    found = compare_arms({k: Rate(s, t) for k, (s, t) in arms.items()}, "holdout")
    for comparison in found:
        assert (comparison.reason is None) == (comparison.p_value is not None)
        for value in (comparison.p_value, comparison.p_value_holm, comparison.always_valid_p_value):
            assert value is None or 0 <= value <= 1
