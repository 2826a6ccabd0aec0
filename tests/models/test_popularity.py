"""The learned popularity factor (docs/newsletter.md, "Across days"), with known answers."""

from __future__ import annotations

import pytest

from models.newsletter.popularity import MAX_FACTOR, ItemFigures, Popularity

FIGURES = Popularity(
    {
        "a": ItemFigures(shown=1000, clickers=100),
        "b": ItemFigures(shown=1000, clickers=20),
    }
)


def test_an_items_click_rate_against_the_personas_smoothed_and_weighted() -> None:
    # average 120 / 2000 = 0.06; a: (100 + 100 × 0.06) / (1000 + 100) = 0.0964, 1.606× the
    # average; b: (20 + 6) / 1100 = 0.0236, 0.394×; weight 0.5 takes the square root
    assert FIGURES.factor("a", 0.5) == pytest.approx((106 / 1100 / 0.06) ** 0.5)
    assert FIGURES.factor("b", 0.5) == pytest.approx((26 / 1100 / 0.06) ** 0.5)
    assert FIGURES.factor("a", 1.0) == pytest.approx(106 / 1100 / 0.06)


def test_an_unknown_item_or_no_weight_or_no_figures_is_neutral() -> None:
    assert FIGURES.factor("new", 0.5) == pytest.approx(1.0)
    assert FIGURES.factor("a", 0.0) == 1.0
    assert Popularity().factor("a", 1.0) == 1.0
    assert Popularity({"a": ItemFigures(shown=50)}).factor("a", 1.0) == 1.0  # no clicks yet


def test_few_recipients_say_little() -> None:
    few = Popularity({"a": ItemFigures(shown=5, clickers=5), "b": ItemFigures(shown=995)})
    # 5 clicks of 5 shown is 200× the average of 0.005, but smoothed: (5 + 0.5) / 105 = 10.5×
    assert few.factor("a", 0.5) == pytest.approx((5.5 / 105 / 0.005) ** 0.5)
    assert few.factor("a", 0.5) < 200**0.5 / 4


def test_conversions_multiply_in_and_the_factor_is_bounded() -> None:
    both = Popularity(
        {
            "a": ItemFigures(shown=1000, clickers=100, converters=30),
            "b": ItemFigures(shown=1000, clickers=100, converters=10),
        }
    )
    # the same clicks; conversions 40 / 2000 = 0.02: a (30 + 2) / 1100, b (10 + 2) / 1100
    assert both.factor("a", 1.0) == pytest.approx(32 / 1100 / 0.02)
    assert both.factor("b", 1.0) == pytest.approx(12 / 1100 / 0.02)
    huge = Popularity({"a": ItemFigures(10_000, 9_000), "b": ItemFigures(100_000, 10)})
    assert huge.factor("a", 4.0) == MAX_FACTOR
