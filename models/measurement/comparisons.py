"""An experiment's arms against its control: the figures an analyst decides on.

Each arm is a rate, successes out of trials (for example clickers out of the recipients it was
shown to). Against the control, every arm gets its rate and lift, and:

* a two-sided p-value: Fisher's exact test while any expected cell of the 2×2 table is below
  ``FISHER_BELOW`` (small samples, where the normal approximation misleads), else the pooled
  two-proportion z-test;
* the same p-value adjusted by Holm's step-down method over every arm compared with the same
  control (several arms against one control is several tests);
* an always-valid p-value (a mixture sequential probability ratio test, mSPRT, on the difference
  of the two rates, with a normal mixing distribution of standard deviation ``MIXING_SD``): it
  may be read after every day of an experiment, and stopping the first time it is below α keeps
  the false-positive rate at α;
* the probability that the arm's rate is above the control's, under uniform Beta(1, 1) priors,
  computed exactly (a finite sum for integer counts, not a simulation);
* warnings: an arm with too few trials or successes to read, and, for a difference that is not
  significant, the smallest lift the sample could have detected at 80% power when the observed
  lift is below it (no evidence of a difference is not evidence of none).

A comparison that cannot be made (an arm without trials, more successes than trials) carries
the reason instead of figures: nothing here raises on counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

FISHER_BELOW = 5.0
"""Fisher's exact test is used while an expected cell count is below this (the textbook rule
for the z-test's normal approximation)."""
MIN_TRIALS = 100
"""Fewer trials than this in an arm draws a small-sample warning."""
MIN_SUCCESSES = 10
"""Fewer successes than this in an arm draws a small-sample warning."""
ALPHA = 0.05
POWER = 0.8
MIXING_SD = 0.01
"""The mSPRT's mixing distribution on the difference of the rates, N(0, MIXING_SD²): it is most
sensitive to differences of about a percentage point, the size of the differences between
click rates of a few percent that email tests are run for. It is fixed in advance, as the
test's guarantee requires."""


@dataclass(frozen=True)
class Rate:
    """Successes out of trials for one arm."""

    successes: int
    trials: int

    @property
    def value(self) -> float | None:
        """successes / trials (None without trials)."""
        return self.successes / self.trials if self.trials > 0 else None


@dataclass(frozen=True)
class Comparison:
    """One arm against the control. Without ``reason``, every figure that is defined is set."""

    arm: str
    control: str
    arm_successes: int
    arm_trials: int
    control_successes: int
    control_trials: int
    arm_rate: float | None
    control_rate: float | None
    lift: float | None = None
    """(arm rate − control rate) / control rate."""
    test: str | None = None
    """``fisher`` or ``z``: which test gave ``p_value``."""
    z: float | None = None
    """The z statistic (also when Fisher's test gave the p-value)."""
    p_value: float | None = None
    p_value_holm: float | None = None
    """``p_value`` adjusted over every arm compared with this control."""
    always_valid_p_value: float | None = None
    probability_to_beat_control: float | None = None
    minimum_detectable_lift: float | None = None
    """The smallest lift (either way) this sample detects at 80% power and α = 0.05."""
    warnings: tuple[str, ...] = ()
    reason: str | None = None
    """Why no figures could be computed."""


def probability_to_beat(arm: Rate, control: Rate) -> float:
    """P(arm's rate > control's rate), each rate Beta(1 + successes, 1 + failures), exactly.

    For integer parameters P(X > Y), X ~ Beta(a, b) and Y ~ Beta(c, d), is the finite sum
    Σ_{i<a} B(c+i, b+d) / ((b+i) B(1+i, b) B(c, d)); it is summed in log space over the arm
    with fewer successes (the other order is its complement)."""
    if arm.successes <= control.successes:
        return _exceeds(arm, control)
    return 1.0 - _exceeds(control, arm)


def _exceeds(x: Rate, y: Rate) -> float:
    """P(rate x > rate y), summed over x's successes."""
    import numpy as np  # imported when a report needs it: scipy takes seconds to import
    from scipy import special

    a, b = 1 + x.successes, 1 + x.trials - x.successes
    c, d = 1 + y.successes, 1 + y.trials - y.successes
    i = np.arange(a, dtype=np.float64)
    terms = (
        special.betaln(c + i, b + d)
        - np.log(b + i)
        - special.betaln(1 + i, b)
        - special.betaln(c, d)
    )
    return float(min(1.0, max(0.0, np.exp(special.logsumexp(terms)))))


def z_statistic(arm: Rate, control: Rate) -> float | None:
    """The pooled two-proportion z statistic (None when every trial succeeded or none did)."""
    pooled = (arm.successes + control.successes) / (arm.trials + control.trials)
    variance = pooled * (1 - pooled) * (1 / arm.trials + 1 / control.trials)
    if variance <= 0:
        return None
    return (arm.successes / arm.trials - control.successes / control.trials) / math.sqrt(variance)


def two_sided_p(arm: Rate, control: Rate) -> tuple[str, float]:
    """Which test and its two-sided p-value: Fisher's exact test for small expected counts,
    else the z-test."""
    table = [
        [arm.successes, arm.trials - arm.successes],
        [control.successes, control.trials - control.successes],
    ]
    total = arm.trials + control.trials
    successes = arm.successes + control.successes
    expected = [
        rate_trials * column / total
        for rate_trials in (arm.trials, control.trials)
        for column in (successes, total - successes)
    ]
    z = z_statistic(arm, control)
    if min(expected) < FISHER_BELOW or z is None:
        from scipy import stats  # imported when a report needs it (seconds to import)

        return "fisher", float(stats.fisher_exact(table).pvalue)
    return "z", float(math.erfc(abs(z) / math.sqrt(2)))


def always_valid_p(arm: Rate, control: Rate, mixing_sd: float = MIXING_SD) -> float:
    """The mSPRT's p-value for "the rates differ" at this look: 1 / Λ, where Λ is the
    likelihood ratio of the observed difference, mixed over N(0, mixing_sd²) alternatives,
    against no difference (normal approximation with each rate's own variance)."""
    difference = arm.successes / arm.trials - control.successes / control.trials
    variance = _variance(arm) + _variance(control)
    if variance <= 0:
        return 1.0
    tau2 = mixing_sd**2
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + (
        tau2 * difference**2 / (2 * variance * (variance + tau2))
    )
    return float(min(1.0, math.exp(-log_ratio)))


def _variance(rate: Rate) -> float:
    p = rate.successes / rate.trials
    return p * (1 - p) / rate.trials


def minimum_detectable_lift(arm: Rate, control: Rate) -> float | None:
    """The smallest relative difference from the control's rate this sample detects with
    ``POWER`` at two-sided ``ALPHA`` (None when the control's rate is 0 or 1)."""
    p = control.successes / control.trials
    if not 0 < p < 1:
        return None
    z = NormalDist().inv_cdf(1 - ALPHA / 2) + NormalDist().inv_cdf(POWER)
    return float(z * math.sqrt(p * (1 - p) * (1 / arm.trials + 1 / control.trials)) / p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest p-value times (m − k + 1), made
    non-decreasing in that order and capped at 1; in the input's order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def problem(rate: Rate) -> str | None:
    """Why ``rate`` cannot be compared, if it cannot."""
    if rate.trials <= 0:
        return "no trials"
    if rate.successes < 0:
        return "negative successes"
    if rate.successes > rate.trials:
        return f"more successes ({rate.successes}) than trials ({rate.trials})"
    return None


def _warnings(name: str, rate: Rate) -> list[str]:
    if rate.trials < MIN_TRIALS:
        return [f"{name}: {rate.trials} trials, fewer than {MIN_TRIALS}: too few to read"]
    if rate.successes < MIN_SUCCESSES:
        return [f"{name}: {rate.successes} successes, fewer than {MIN_SUCCESSES}: too few to read"]
    return []


def _compare(arm_id: str, arm: Rate, control_id: str, control: Rate) -> Comparison:
    """One comparison before Holm's adjustment."""
    blank = Comparison(
        arm_id,
        control_id,
        arm.successes,
        arm.trials,
        control.successes,
        control.trials,
        arm.value,
        control.value,
    )
    for name, rate in ((arm_id, arm), (control_id, control)):
        trouble = problem(rate)
        if trouble is not None:
            return replace(blank, reason=f"{name}: {trouble}")
    arm_rate, control_rate = arm.successes / arm.trials, control.successes / control.trials
    test, p_value = two_sided_p(arm, control)
    lift = (arm_rate - control_rate) / control_rate if control_rate else None
    detectable = minimum_detectable_lift(arm, control)
    warnings = _warnings(arm_id, arm) + _warnings(control_id, control)
    if p_value >= ALPHA and detectable is not None and lift is not None and abs(lift) < detectable:
        warnings.append(
            f"underpowered: not significant, but this sample detects only lifts of "
            f"±{detectable:.1%} or more at {POWER:.0%} power (observed {lift:+.1%}): it does not "
            "show that the arms are alike either"
        )
    return replace(
        blank,
        arm_rate=arm_rate,
        control_rate=control_rate,
        lift=lift,
        test=test,
        z=z_statistic(arm, control),
        p_value=p_value,
        always_valid_p_value=always_valid_p(arm, control),
        probability_to_beat_control=probability_to_beat(arm, control),
        minimum_detectable_lift=detectable,
        warnings=tuple(warnings),
    )


def compare_arms(arms: Mapping[str, Rate], control: str) -> list[Comparison]:
    """Every arm but ``control`` against it (sorted by arm), with Holm's adjustment over the
    comparisons that could be made; an arm or control without figures gets its reason."""
    control_rate = arms.get(control, Rate(0, 0))
    made = [
        _compare(arm, rate, control, control_rate)
        for arm, rate in sorted(arms.items())
        if arm != control
    ]
    tested = [c for c in made if c.p_value is not None]
    adjusted = dict(
        zip((c.arm for c in tested), holm([c.p_value or 0.0 for c in tested]), strict=True)
    )
    return [replace(c, p_value_holm=adjusted[c.arm]) if c.arm in adjusted else c for c in made]
