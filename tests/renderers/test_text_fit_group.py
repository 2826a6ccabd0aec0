"""Texts that share a box shrink together, keeping their size ratios, never below their minimum
sizes, and are cut short with an ellipsis only at those; wrapped lines are balanced."""

from __future__ import annotations

from typing import Any

import pytest

from renderers.banner import BannerParams, layout
from renderers.base import RenderRequest
from renderers.card import CardParams, _column, _Text, resolve_content
from renderers.fonts import load_font
from renderers.text_layout import (
    ELLIPSIS,
    MIN_FONT_SIZE,
    TextBox,
    balance,
    fit,
    fit_group,
    min_size_for,
    text_width,
    wrap,
)

OFFER = "Anna, this weekend only: 20% off for you"
LONG_NAME = "Maximiliana Wilhelmina-Theodora Alexandrina von Hohenzollern-Sigmaringen"


def banner(headline: str, **line: Any) -> BannerParams:
    """A 36 px bold headline over an 18 px body line."""
    return BannerParams.model_validate(
        {
            "lines": [
                {"text": headline, "font_size": 36, "weight": "bold", **line},
                {"text": "Your city trip awaits: book before Sunday", "font_size": 18},
            ]
        }
    )


def sizes(params: BannerParams, scale: int = 1) -> list[float]:
    """The font size each line of a 600×200 banner ends at."""
    request = RenderRequest(600 * scale, 200 * scale, {}, scale=scale)
    return [fitted.font.size for _, fitted in layout(params, request)]


def test_a_short_headline_keeps_its_sizes() -> None:
    assert sizes(banner("Hi Anna")) == [36, 18]


@pytest.mark.parametrize(
    "name",
    ["Anna", "Bartholomew-Alexander", "Maximiliana Wilhelmina-Theodora", LONG_NAME],
)
def test_a_headline_never_ends_smaller_than_the_body_line(name: str) -> None:
    headline, body = sizes(banner(f"{name}, your city trip awaits", max_lines=2))
    assert headline >= body
    assert headline >= 18  # half of 36: the default floor
    assert abs(headline / body - 2) <= 0.15  # the 36:18 ratio, give or take rounding


def test_lines_share_the_whole_box() -> None:
    """Two 50 px headline lines and a 27 px body line fit the 152 px padded box at full size
    (equal thirds of 76 px would have shrunk the headline)."""
    params = BannerParams.model_validate(
        {
            "lines": [
                {"text": "Bartholomew, your city trip awaits", "font_size": 40},
                {"text": "Weekend breaks from 149", "font_size": 22},
            ]
        }
    )
    fitted = [f for _, f in layout(params, RenderRequest(600, 200, {}))]
    assert [(len(f.lines), f.font.size) for f in fitted] == [(2, 40), (1, 22)]


def test_lines_shrink_together_keeping_their_ratio() -> None:
    # The headline needs shrinking; the body line, which fits, shrinks with it.
    headline, body = sizes(banner("Bartholomew-Alexander, your city trip awaits", max_lines=1))
    # 36 → 32 → 28 → 25 → 22 → 19 px; the body at the same factor, 18 × 19 / 36 = 9.5 → 10
    assert (headline, body) == (19, 10)


def test_a_very_long_name_ends_with_an_ellipsis_at_the_floor_size() -> None:
    params = banner(f"{LONG_NAME}, your city trip awaits", max_lines=1)
    request = RenderRequest(600, 200, {})
    (_, headline), (_, body) = layout(params, request)
    assert headline.font.size == 18  # min_size_for(36)
    assert body.font.size == 9  # min_size_for(18)
    assert len(headline.lines) == 1
    assert headline.lines[0].endswith(ELLIPSIS)
    assert text_width(headline.font, headline.lines[0]) <= 600 - 2 * 24


def test_the_minimum_size_is_configurable_per_line_and_scales() -> None:
    params = banner(f"{LONG_NAME}, your city trip awaits", max_lines=1, min_font_size=24)
    assert sizes(params) == [24, 9]
    assert sizes(params, scale=2) == [48, 18]


def test_a_line_that_does_not_shrink_keeps_its_size() -> None:
    assert sizes(banner(f"{LONG_NAME}, your trip", max_lines=1, shrink=False))[0] == 36


def test_default_minimum_is_half_the_size_but_never_below_the_smallest() -> None:
    assert [min_size_for(size) for size in (36, 35, 18, 12, 6)] == [18, 18, 9, 8, 6]
    assert MIN_FONT_SIZE == 8


def test_a_group_shrinks_for_its_height_only_when_it_must() -> None:
    boxes = [
        TextBox("Hello", "dejavu-sans", "bold", 40, 1, 1.25),
        TextBox("World", "dejavu-sans", "regular", 20, 1, 1.25),
    ]
    assert [f.font.size for f in fit_group(boxes, max_width=500, max_height=75)] == [40, 20]
    # 50 + 25 px of lines in 60 px: both shrink, by the same steps.
    assert [f.font.size for f in fit_group(boxes, max_width=500, max_height=60)] == [32, 16]


def test_a_stack_too_tall_at_its_floor_loses_lines_from_the_longest_text() -> None:
    boxes = [
        TextBox(OFFER, "dejavu-sans", "bold", 32, 3, 1.0, min_size=32),
        TextBox("Book now", "dejavu-sans", "regular", 16, 1, 1.0, min_size=16),
    ]
    first, second = fit_group(boxes, max_width=300, max_height=80)
    assert len(first.lines) == 2  # 3 × 32 + 16 px did not fit in 80
    assert first.lines[-1].endswith(ELLIPSIS)
    assert second.lines == ["Book now"]


def test_fit_alone_shrinks_as_it_always_did() -> None:
    """A text on its own shrinks by steps of 0.9 down to 8 px, and is not balanced."""
    fitted = fit(
        OFFER,
        family="dejavu-sans",
        weight="bold",
        size=40,
        max_width=300,
        max_height=40,
        max_lines=1,
        line_spacing=1.2,
    )
    assert fitted.font.size == 11  # 40, 36, 32, 28, 25, 22, 19, 17, 15, 13, 11
    assert fitted.lines == [OFFER]


def test_balanced_lines_leave_no_lone_word() -> None:
    font = load_font("dejavu-sans", "bold", 32)
    greedy = wrap(OFFER, font, 370)
    assert greedy == ["Anna, this weekend", "only: 20% off for", "you"]
    assert balance(greedy, font, 370) == ["Anna, this", "weekend only:", "20% off for you"]
    greedy = wrap(OFFER, font, 680)
    assert greedy == ["Anna, this weekend only: 20% off for", "you"]
    assert balance(greedy, font, 680) == ["Anna, this weekend", "only: 20% off for you"]
    assert balance(["one line"], font, 680) == ["one line"]


def test_a_banner_balances_its_lines_unless_told_not_to() -> None:
    def lines(**line: Any) -> list[str]:
        params = BannerParams.model_validate(
            {"lines": [{"text": OFFER, "font_size": 32, "weight": "bold", **line}]}
        )
        ((_, fitted),) = layout(params, RenderRequest(728, 200, {}))
        return fitted.lines

    assert lines() == ["Anna, this weekend", "only: 20% off for you"]
    assert lines(balance=False) == ["Anna, this weekend only: 20% off for", "you"]


def card_text_sizes(title: str) -> tuple[float, float]:
    """The sizes a card's title and subtitle end at, in a 568 px column at full size."""
    params = CardParams.model_validate(
        {
            "title": {"text": title, "font_size": 28, "max_lines": 1},
            "subtitle": {"text": "Noise cancelling, 30 hours", "font_size": 18},
        }
    )
    content = resolve_content(params, RenderRequest(600, 200, {}))
    elements, _ = _column(params, content, 568, 1.0)
    first, second = elements[:2]
    assert isinstance(first, _Text)
    assert isinstance(second, _Text)
    return first.fitted.font.size, second.fitted.font.size


def test_a_card_title_never_ends_smaller_than_its_subtitle() -> None:
    assert card_text_sizes("Headphones") == (28, 18)
    title, subtitle = card_text_sizes(LONG_NAME + " wireless headphones")
    assert title >= subtitle
    assert title == 14  # its floor, half of 28
