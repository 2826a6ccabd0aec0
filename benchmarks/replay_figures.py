"""Section 8: the offline replay of the newsletter's ranking on the seeded synthetic world
(``benchmarks/synthetic_newsletter.py``): today's ranking (priority × affinity) against the
rules across days, by clicks, orders and revenue on the held-out days.

``python -m benchmarks.replay_figures [--recipients N]`` runs it alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.harness import heading, paragraph, table
from benchmarks.synthetic_newsletter import world
from models.newsletter.newsletters import Ranking
from models.newsletter.replay import PolicyFigures, replay

POLICIES = {
    "today: priority × affinity": Ranking().priority_times_affinity(),
    "+ fatigue and exclusions": Ranking(popularity_weight=0),
    "+ learned popularity (defaults)": Ranking(),
}
BASELINE = "today: priority × affinity"


@dataclass(frozen=True)
class ReplayOptions:
    """The world the replay runs on."""

    recipients: int = 20_000
    days: int = 14
    held_out_days: int = 4
    seed: int = 2026


def _rate(figures: PolicyFigures, successes: int, percent: bool = True) -> str:
    found = figures.rate(successes)
    if found is None:
        return "-"
    value, low, high = found
    scale = 100 if percent else 1
    return f"{value * scale:.2f}% ({low * scale:.2f}–{high * scale:.2f})"


def run(options: ReplayOptions | None = None) -> dict[str, PolicyFigures]:
    """Replay every policy and print their figures and ratios to today's ranking."""
    options = options or ReplayOptions()
    print(heading("8. Offline replay of the newsletter ranking (synthetic world, held-out days)"))
    started = time.perf_counter()
    synthetic = world(options.recipients, options.days, options.held_out_days, options.seed)
    found = replay(synthetic.log, synthetic.items, POLICIES, synthetic.held_out_from)
    held_out = sum(1 for e in synthetic.log if e.day >= synthetic.held_out_from)
    print(
        paragraph(
            f"{options.recipients:,} recipients, {options.days} days of one email each (opened "
            f"{len(synthetic.log):,} times), items drawn at random by the log; the last "
            f"{options.held_out_days} days ({held_out:,} emails, {held_out * 3:,} slot "
            "impressions) held out, popularity learned from the days before. Rates per "
            "matched slot impression, with 95% intervals."
        )
    )
    base = found[BASELINE]
    rows = []
    for name, figures in found.items():
        revenue = figures.revenue / figures.matched if figures.matched else 0.0
        base_revenue = base.revenue / base.matched if base.matched else 0.0
        ratio = (
            (figures.clicks / figures.matched) / (base.clicks / base.matched)
            if figures.matched and base.matched and base.clicks
            else float("nan")
        )
        rows.append(
            [
                name,
                f"{figures.matched:,}",
                _rate(figures, figures.clicks),
                _rate(figures, figures.orders),
                f"{revenue:.2f}",
                f"{ratio:.2f}×",
                f"{revenue / base_revenue:.2f}×" if base_revenue else "-",
            ]
        )
    print(
        table(
            [
                "ranking",
                "matched",
                "click rate",
                "order rate",
                "revenue / impr.",
                "clicks vs today",
                "revenue vs today",
            ],
            rows,
        )
    )
    print(paragraph(f"ran in {time.perf_counter() - started:.1f} s"))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the section alone."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_figures")
    parser.add_argument("--recipients", type=int, default=ReplayOptions().recipients)
    parser.add_argument("--seed", type=int, default=ReplayOptions().seed)
    args = parser.parse_args(argv)
    run(ReplayOptions(recipients=args.recipients, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
