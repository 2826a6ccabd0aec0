"""The progress / loyalty bar renderer."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from renderers.base import RenderRequest
from renderers.progress import RENDERER, Progress, ProgressParams
from renderers.registry import registry
from tests.renderers.pixels import color_box, color_count
from tests.renderers.reference import assert_matches_reference

TRACK = "#E5E7EB"
FILL = "#16A34A"
BACKGROUND = "#FFFFFF"
LABEL = "{{ remaining }} points to Gold"


def progress(**extra: Any) -> ProgressParams:
    """A loyalty bar: ``points`` towards 1000."""
    document: dict[str, Any] = {
        "type": "progress",
        "value": "{{ points }}",
        "goal": 1000,
        "label": LABEL,
        "locale": "en_GB",
    }
    document.update(extra)
    return ProgressParams.model_validate(document)


def render(
    params: ProgressParams,
    fields: Mapping[str, Any],
    *,
    size: tuple[int, int] = (600, 150),
    scale: int = 1,
) -> Image.Image:
    """Render at ``size`` CSS pixels times ``scale``."""
    return RENDERER.render(
        params, RenderRequest(size[0] * scale, size[1] * scale, fields, scale=scale)
    )


def percent(params: ProgressParams, fields: Mapping[str, Any]) -> int:
    """The whole percent the bar shows."""
    return Progress.resolve(params, RenderRequest(600, 150, fields)).percent


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"points": 650}, 65),
        ({"points": "650"}, 65),
        ({"points": 999.9}, 99),
        ({"points": 1000}, 100),
        ({"points": 1500}, 100),
        ({"points": -50}, 0),
        ({}, 0),
        ({"points": None}, 0),
        ({"points": "lots"}, 0),
        ({"points": "NaN"}, 0),
        ({"points": "1e400"}, 0),
    ],
)
def test_percent_is_clamped_and_floored(fields: dict[str, Any], expected: int) -> None:
    assert percent(progress(), fields) == expected


@pytest.mark.parametrize("goal", [0, -10, "{{ tier_goal }}", "soon"])
def test_a_goal_that_is_missing_or_not_positive_leaves_the_bar_empty(goal: Any) -> None:
    assert percent(progress(goal=goal), {"points": 650}) == 0


def test_goal_can_come_from_the_profile() -> None:
    assert percent(progress(goal="{{ tier_goal }}"), {"points": 650, "tier_goal": "1300"}) == 50


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en_GB", {"value": "1,250", "goal": "5,000", "remaining": "3,750", "percent": "25"}),
        ("nl_NL", {"value": "1.250", "goal": "5.000", "remaining": "3.750", "percent": "25"}),
        ("de_DE", {"value": "1.250", "goal": "5.000", "remaining": "3.750", "percent": "25"}),
    ],
)
def test_label_variables_are_formatted_for_the_locale(
    locale: str, expected: dict[str, str]
) -> None:
    params = progress(goal=5000, locale=locale)
    resolved = Progress.resolve(params, RenderRequest(600, 150, {"points": 1250}))
    assert resolved.variables(locale, {}) == expected


def test_label_says_the_variables() -> None:
    fields = {"points": 650, "first_name": "Anna"}
    label = "{{ first_name }}: {{ value }}/{{ goal }}, {{ percent }}%, {{ remaining }} to go"
    literal = "Anna: 650/1,000, 65%, 350 to go"
    assert render(progress(label=label), fields) == render(progress(label=literal), fields)


def test_label_variables_win_over_profile_fields_of_the_same_name() -> None:
    fields = {"points": 650, "remaining": "a lie"}
    literal = progress(label="350 points to Gold")
    assert render(progress(), fields) == render(literal, fields)


def test_missing_value_counts_as_zero() -> None:
    assert render(progress(), {}) == render(progress(label="1,000 points to Gold"), {})


def test_missing_value_uses_the_label_defaults() -> None:
    params = progress(defaults={"remaining": "A few"})
    assert render(params, {}) == render(progress(label="A few points to Gold"), {})
    # With a valid value the computed variable wins over the default.
    literal = progress(label="350 points to Gold")
    assert render(params, {"points": 650}) == render(literal, {"points": 650})


def test_fields_used_are_profile_placeholders_only() -> None:
    params = progress(
        label="{{ remaining }} to {{ tier }}, {{ first_name }}", goal="{{ tier_goal }}"
    )
    assert RENDERER.fields_used(params) == {"points", "tier", "first_name", "tier_goal"}
    assert RENDERER.fields_used(progress(value=10.0, label="{{ percent }}%")) == frozenset()


def bar_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box of the bar: track and fill together."""
    boxes = [box for color in (TRACK, FILL) if (box := color_box(image, color))]
    assert boxes
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def test_fill_covers_the_progress_share_of_the_track() -> None:
    image = render(progress(), {"points": 500})
    left, _, right, _ = bar_box(image)
    fill = color_box(image, FILL)
    assert fill is not None
    assert abs((fill[2] - fill[0]) - (right - left) / 2) <= 2


def test_value_above_the_goal_fills_the_whole_track() -> None:
    image = render(progress(), {"points": 5000})
    assert color_count(image, TRACK) == 0
    assert color_box(image, FILL) == bar_box(render(progress(), {"points": 0}))


@pytest.mark.parametrize("points", [-50, 0, None, "nonsense"])
def test_no_progress_draws_no_fill(points: Any) -> None:
    image = render(progress(), {"points": points})
    assert color_count(image, FILL) == 0
    assert color_box(image, TRACK) is not None


def test_percentage_is_optional_and_the_bar_takes_its_room() -> None:
    shown = bar_box(render(progress(), {"points": 650}))
    hidden = bar_box(render(progress(show_percentage=False), {"points": 650}))
    assert hidden[0] == shown[0] == 24
    assert hidden[2] == 600 - 24
    assert shown[2] < hidden[2]


def test_bar_length_does_not_depend_on_the_percentage() -> None:
    assert bar_box(render(progress(), {"points": 50})) == bar_box(
        render(progress(), {"points": 1000})
    )


def test_corners_are_rounded_unless_the_radius_is_zero() -> None:
    rounded = render(progress(), {"points": 0})
    left, top, _, _ = bar_box(rounded)
    assert rounded.getpixel((left, top)) == (255, 255, 255)
    square = render(progress(radius=0), {"points": 0})
    assert square.getpixel(bar_box(square)[:2]) == (0xE5, 0xE7, 0xEB)


def test_label_position() -> None:
    above = bar_box(render(progress(), {"points": 650}))
    below = bar_box(render(progress(label_position="below"), {"points": 650}))
    assert above[1] > below[1]
    without_label = bar_box(render(progress(label=""), {"points": 650}))
    assert abs((without_label[1] + without_label[3]) / 2 - 75) <= 1  # centred alone


def test_scale_two_doubles_every_size() -> None:
    single = render(progress(), {"points": 650})
    double = render(progress(), {"points": 650}, scale=2)
    assert double.size == (1200, 300)
    one, two = bar_box(single), bar_box(double)
    assert all(abs(2 * a - b) <= 2 for a, b in zip(one, two, strict=True)), (one, two)


def test_label_above_matches_reference() -> None:
    assert_matches_reference(render(progress(), {"points": 650}), "progress_label_above")


def test_label_below_centred_german_matches_reference() -> None:
    params = progress(
        label="Noch {{ remaining }} Punkte bis Gold",
        label_position="below",
        align="center",
        locale="de_DE",
        goal=2500,
        fill_color="#D97706",
    )
    assert_matches_reference(render(params, {"points": 1250}), "progress_label_below_de")


def test_full_bar_at_scale_two_matches_reference() -> None:
    image = render(progress(label="Gold reached!"), {"points": 1200}, scale=2)
    assert_matches_reference(image, "progress_full_scale2")


@pytest.mark.parametrize(
    "change",
    [
        {"value": True},
        {"goal": float("inf")},
        {"label": "{{ unclosed"},
        {"locale": "xx_YY"},
        {"fill_color": "green"},
        {"bar_height": 0},
    ],
)
def test_invalid_params_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        progress(**change)


def test_value_is_required() -> None:
    with pytest.raises(ValidationError):
        ProgressParams.model_validate({"type": "progress", "goal": 10})


def test_resolved_numbers_are_decimals() -> None:
    resolved = Progress.resolve(progress(), RenderRequest(600, 150, {"points": "12.5"}))
    assert (resolved.value, resolved.goal, resolved.remaining) == (
        Decimal("12.5"),
        Decimal("1000.0"),
        Decimal("987.5"),
    )


def test_progress_is_registered() -> None:
    assert registry()["progress"] is RENDERER
