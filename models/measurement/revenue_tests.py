"""Comparing revenue per recipient between arms: a test fit for skewed values, safe to peek at.

Revenue per recipient is mostly zeros and a few large orders, so the normal approximation of a
t-test misleads on small samples. Each arm against the control gets:

* the means (revenue per recipient shown the arm; those without orders count as 0), the
  difference and the lift;
* a **bootstrap** of the difference of the means (``REPLICATES`` resamples of each arm's
  recipients, seeded from the counts so that a report is reproducible): its 95% percentile
  interval, a two-sided p-value (twice the share of replicates on the far side of zero), and
  the probability that the arm beats the control (the share of replicates above zero);
* the same p-value adjusted by Holm's method over every arm compared with the control;
* an **always-valid p-value**: the mixture sequential probability ratio test (mSPRT) on the
  difference of the means, with the bootstrap's variance of the difference and a normal mixing
  distribution N(0, ``mixing_sd``²), ``MIXING_SD`` unless the caller fixes another before the
  test starts: never drawn from the data, so it is the same at every look. It may be read
  after every day, and stopping the first time it is below α keeps the false-positive rate at
  α. A difference is called significant on it, never on the bootstrap's p-value alone;
* warnings: an arm with fewer than ``MIN_CONVERTERS`` converters.

A resample of an arm of n recipients of whom k bought (n counts every converter, so k ≤ n)
draws the number of buyers K from Binomial(n, k/n) and K of the k buyers' revenues with
replacement, which is the ordinary bootstrap of n values without listing the zeros. Past
``EXACT_BELOW`` buyers the sum of the K revenues is drawn from its normal approximation (the
central limit theorem over K values).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.measurement.comparisons import ALPHA, holm

REPLICATES = 2000
MIXING_SD = 0.5
"""The mSPRT's mixing standard deviation, in the reporting currency per recipient, fixed in
advance: it suits differences of about half a unit per recipient (a tenth of a revenue per
recipient of 5). Any fixed value keeps the p-value always valid; it only sets which differences
are found fastest."""
MIN_CONVERTERS = 10
EXACT_BELOW = 2000


@dataclass(frozen=True)
class RevenueSample:
    """An arm's recipients and the revenue of each who bought (the others bought nothing)."""

    recipients: int
    revenues: Sequence[float] = field(default_factory=tuple)

    @property
    def counted(self) -> int:
        """The recipients, counting at least every converter (late orders can credit more
        converters than the recipients counted so far)."""
        return max(self.recipients, len(self.revenues))

    @property
    def mean(self) -> float | None:
        """Revenue per recipient (None without recipients)."""
        return sum(self.revenues) / self.counted if self.counted else None


def _resampled_means(sample: RevenueSample, rng: Any, replicates: int) -> Any:
    """``replicates`` bootstrap means of ``sample`` (a numpy array)."""
    import numpy as np

    n, values = sample.counted, np.asarray(sample.revenues, dtype=np.float64)
    k = len(values)  # at most n
    if k == 0:
        return np.zeros(replicates)
    buyers = rng.binomial(n, k / n, size=replicates)
    if k < EXACT_BELOW:  # every replicate's buyers drawn at once, then summed per replicate
        drawn = values[rng.integers(0, k, size=int(buyers.sum()))]
        ends = np.cumsum(buyers)
        sums = np.concatenate(([0.0], np.cumsum(drawn)))
        totals = sums[ends] - sums[ends - buyers]
    else:
        mean, variance = values.mean(), values.var()
        totals = rng.normal(buyers * mean, np.sqrt(buyers * variance))
    return totals / n


def _seed(*samples: RevenueSample) -> int:
    material = repr([(s.recipients, len(s.revenues), round(sum(s.revenues), 4)) for s in samples])
    return zlib.crc32(material.encode())


def always_valid_p(difference: float, variance: float, mixing_sd: float) -> float:
    """The mSPRT's p-value for "the means differ" at this look: 1 / Λ, with Λ the likelihood
    ratio of the observed difference mixed over N(0, mixing_sd²) alternatives."""
    if variance <= 0 or mixing_sd <= 0:
        return 1.0
    tau2 = mixing_sd**2
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + (
        tau2 * difference**2 / (2 * variance * (variance + tau2))
    )
    return float(min(1.0, math.exp(-log_ratio)))


def _compare(
    arm_id: str,
    arm: RevenueSample,
    control_id: str,
    control: RevenueSample,
    replicates: int,
    mixing_sd: float,
) -> dict[str, Any]:
    import numpy as np

    found: dict[str, Any] = {
        "arm": arm_id,
        "control": control_id,
        "method": "bootstrap",
        "arm_recipients": arm.recipients,
        "control_recipients": control.recipients,
        "arm_converters": len(arm.revenues),
        "control_converters": len(control.revenues),
        "arm_mean": arm.mean,
        "control_mean": control.mean,
    }
    if arm.recipients < 2 or control.recipients < 2:
        return {**found, "reason": "fewer than two recipients in an arm"}
    rng = np.random.default_rng(_seed(arm, control))
    differences = _resampled_means(arm, rng, replicates) - _resampled_means(
        control, rng, replicates
    )
    difference = float(arm.mean - control.mean)  # type: ignore[operator]
    above = float((differences > 0).mean())
    below = float((differences < 0).mean())
    warnings = [
        f"{name} has fewer than {MIN_CONVERTERS} converters: too few to read"
        for name, sample in ((arm_id, arm), (control_id, control))
        if len(sample.revenues) < MIN_CONVERTERS
    ]
    always_valid = always_valid_p(difference, float(differences.var()), mixing_sd)
    return {
        **found,
        "difference": difference,
        "lift": difference / control.mean if control.mean else None,
        "difference_ci95": [
            float(np.quantile(differences, 0.025)),
            float(np.quantile(differences, 0.975)),
        ],
        "p_value": min(1.0, 2 * min(above, below) + 1 / replicates),
        "always_valid_p_value": always_valid,
        "probability_to_beat_control": above,
        "significant": always_valid < ALPHA,
        "warnings": warnings,
        "reason": None,
    }


def compare_revenue(
    arms: Mapping[str, RevenueSample],
    control: str,
    replicates: int = REPLICATES,
    mixing_sd: float = MIXING_SD,
) -> list[dict[str, Any]]:
    """Every arm but ``control`` against it, in arm order, with Holm-adjusted p-values
    (``mixing_sd``: the mSPRT's, fixed before the test starts, never from its figures)."""
    if control not in arms:
        return [
            {
                "arm": arm,
                "control": control,
                "method": "bootstrap",
                "reason": "the control has no figures yet",
            }
            for arm in sorted(arms)
        ]
    found = [
        _compare(arm, arms[arm], control, arms[control], replicates, mixing_sd)
        for arm in sorted(arms)
        if arm != control
    ]
    measured = [f for f in found if f.get("reason") is None]
    for entry, adjusted in zip(measured, holm([f["p_value"] for f in measured]), strict=True):
        entry["p_value_holm"] = adjusted
    return found
