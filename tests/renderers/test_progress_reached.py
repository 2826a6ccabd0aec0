"""The progress bar once the goal is reached, and a percentage that agrees with the fill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image

from renderers.base import RenderRequest
from renderers.progress import MIN_FILL, RENDERER, Progress, ProgressParams
from tests.renderers.pixels import color_box, color_count

TRACK = "#E5E7EB"
FILL = "#16A34A"


def progress(**extra: Any) -> ProgressParams:
    """A loyalty bar: ``points`` towards 1,000, saying what remains."""
    document: dict[str, Any] = {
        "value": "{{ points }}",
        "goal": 1000,
        "label": "Only {{ remaining }} points to Gold",
        "locale": "en_GB",
        "radius": 0,
        **extra,
    }
    return ProgressParams.model_validate(document)


def render(params: ProgressParams, fields: Mapping[str, Any]) -> bytes:
    return RENDERER.render(params, RenderRequest(600, 150, fields)).tobytes()


def image(params: ProgressParams, fields: Mapping[str, Any]) -> Image.Image:
    return RENDERER.render(params, RenderRequest(600, 150, fields))


def resolved(points: float, goal: float = 1000) -> Progress:
    params = progress(goal=goal)
    return Progress.resolve(params, RenderRequest(600, 150, {"points": points}))


@pytest.mark.parametrize("points", [1000, 1250])
def test_at_or_past_the_goal_the_label_says_it_is_reached(points: int) -> None:
    reached = render(progress(), {"points": points})
    assert reached == render(progress(label="Goal reached!"), {"points": points})
    assert reached != render(progress(label="Only 0 points to Gold"), {"points": points})


def test_the_reached_label_is_configurable_and_may_use_the_variables() -> None:
    params = progress(reached_label="Gold reached with {{ value }} points!")
    literal = progress(label="Gold reached with 1,250 points!")
    assert render(params, {"points": 1250}) == render(literal, {"points": 1250})
    assert render(progress(reached_label=""), {"points": 1250}) == render(
        progress(label=""), {"points": 1250}
    )
    # Short of the goal the label says what remains.
    assert render(params, {"points": 650}) == render(
        progress(label="Only 350 points to Gold"), {"points": 650}
    )


@pytest.mark.parametrize(
    ("locale", "text"),
    [("nl_NL", "Doel bereikt!"), ("de_DE", "Ziel erreicht!"), ("fr_FR", "Objectif atteint\u202f!")],
)
def test_the_default_reached_label_speaks_the_locale(locale: str, text: str) -> None:
    assert render(progress(locale=locale), {"points": 1000}) == render(
        progress(locale=locale, label=text), {"points": 1000}
    )


def test_other_languages_show_no_label_rather_than_an_english_one() -> None:
    assert render(progress(locale="sv_SE"), {"points": 1000}) == render(
        progress(locale="sv_SE", label=""), {"points": 1000}
    )


def test_a_label_that_does_not_say_what_remains_stays() -> None:
    params = progress(label="{{ percent }}% of the way to Gold")
    literal = progress(label="100% of the way to Gold")
    assert render(params, {"points": 1250}) == render(literal, {"points": 1250})


def test_the_reached_label_reads_profile_fields() -> None:
    params = progress(reached_label="Well done, {{ first_name }}!")
    assert RENDERER.fields_used(params) == {"points", "first_name"}


@pytest.mark.parametrize(
    ("points", "goal", "percent", "reached"),
    [
        (0, 1000, "0", False),
        (-5, 1000, "0", False),
        (3, 1000, "<1", False),
        (0.001, 1000, "<1", False),
        (10, 1000, "1", False),
        (996, 1000, "99", False),
        (999.6, 1000, "99", False),
        (999.99, 1000, "99", False),
        (1000, 1000, "100", True),
        (1250, 1000, "100", True),
        (5, 0, "0", False),
    ],
)
def test_the_percent_shown(points: float, goal: float, percent: str, reached: bool) -> None:
    bar = resolved(points, goal)
    assert bar.shown_percent("en_GB") == percent
    assert bar.variables("en_GB", {})["percent"] == percent
    assert bar.reached is reached
    if percent == "0":
        assert bar.filled(552, 1) == 0


@pytest.mark.parametrize(
    ("points", "filled"),
    [
        (0, 0),
        (-5, 0),
        (0.001, MIN_FILL),  # any progress shows
        (3, MIN_FILL),  # 3/1000 of 552 px is 1.7 px
        (500, 276),
        (996, 550),  # 99.6% of 552 rounds to 550: short of the end
        (999.99, 552 - MIN_FILL),  # would round to the whole track, but the goal is not reached
        (1000, 552),
        (1250, 552),
    ],
)
def test_the_fill_agrees_with_the_percent(points: float, filled: int) -> None:
    assert resolved(points).filled(552, 1) == filled


def percentage_area(bar: Image.Image) -> bytes:
    """The pixels right of the bar, where the percentage is drawn."""
    track = color_box(bar, TRACK) or (0, 0, 0, 0)
    fill = color_box(bar, FILL) or (0, 0, 0, 0)
    return bar.crop((max(track[2], fill[2]) + 2, 0, bar.width, bar.height)).tobytes()


def test_three_of_a_thousand_reads_less_than_one_percent_over_a_sliver() -> None:
    params = progress(label="")
    tiny = image(params, {"points": 3})
    sliver = color_box(tiny, FILL)
    assert sliver is not None
    assert sliver[2] - sliver[0] == MIN_FILL
    none = image(params, {"points": 0})
    assert color_count(none, FILL) == 0
    assert percentage_area(tiny) != percentage_area(none)  # "<1%", not "0%"
    assert percentage_area(tiny) == percentage_area(image(params, {"points": 0.5}))


def test_a_bar_short_of_its_goal_never_looks_full() -> None:
    almost = image(progress(label=""), {"points": 999.99})
    full = image(progress(label=""), {"points": 1000})
    assert color_box(almost, TRACK) is not None  # a little track shows at the end
    assert color_count(full, TRACK) == 0
    assert percentage_area(almost) != percentage_area(full)  # "99%" against "100%"
    assert percentage_area(almost) == percentage_area(image(progress(label=""), {"points": 990}))
