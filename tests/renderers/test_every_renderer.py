"""The contract every registered block type meets: fed random text, sizes and parameters
(property-based, with hypothesis) or odd profile values (negative, huge, NaN, empty, of the
wrong type, missing), it returns a valid image of the promised size and never raises; only a
block that cannot do without a field (a countdown's deadline, a code's value) may say its content is
unavailable, so the server serves the fallback."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import TypeAdapter

from renderers.base import ContentUnavailable, RenderRequest
from renderers.registry import ContentParams, registry

CONTENT: TypeAdapter[Any] = TypeAdapter(ContentParams)
NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)

text = st.text(max_size=120)
template = st.sampled_from(["{{ first_name }}", "Hi {{ first_name }}!", "{{ points }} pts", ""])
color = st.from_regex(r"#[0-9A-F]{6}", fullmatch=True)
font_size = st.integers(min_value=6, max_value=200)
fields = st.fixed_dictionaries(
    {},
    optional={
        "first_name": st.one_of(text, st.none(), st.integers()),
        "points": st.one_of(st.integers(-(10**9), 10**12), st.floats(allow_nan=True), text),
        "deadline": st.one_of(text, st.just("2026-12-01T00:00:00+01:00")),
        "time_zone": st.sampled_from(["Europe/Amsterdam", "Not/AZone", ""]),
    },
)


def banner(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": "banner",
        "background": draw(color),
        "lines": [
            {
                "text": draw(st.one_of(text, template)).replace("{", "("),
                "font_size": draw(font_size),
                "color": draw(color),
                "align": draw(st.sampled_from(["left", "center", "right"])),
                "max_lines": draw(st.integers(1, 5)),
            }
            for _ in range(draw(st.integers(1, 3)))
        ],
        "padding": draw(st.integers(0, 60)),
    }


def countdown(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["deadline", "deadline_field", "evergreen_seconds"]))
    value: Any = {
        "deadline": (NOW + dt.timedelta(seconds=draw(st.integers(-(10**6), 10**8)))).isoformat(),
        "deadline_field": "deadline",
        "evergreen_seconds": draw(st.integers(1, 10**6)),
    }[mode]
    return {
        "type": "countdown",
        mode: value,
        "frames": draw(st.integers(1, 8)),
        "digit_font_size": draw(st.integers(8, 120)),
        "language": draw(st.sampled_from(["en", "nl", "de", "fr"])),
        "expired_text": draw(text),
        "background": draw(color),
    }


def card(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": "card",
        "layout": draw(st.sampled_from(["horizontal", "vertical"])),
        "title": {"text": draw(st.one_of(text, template)).replace("{", "(")},
        "price": draw(st.one_of(st.floats(0, 10**9), st.just("{{ points }}"))),
        "old_price": draw(st.one_of(st.none(), st.floats(0, 10**9))),
        "locale": draw(st.sampled_from(["nl_NL", "en_GB", "de_DE"])),
        "badge": {"text": draw(text)},
        "cta": {"text": draw(text)},
        "image_asset": "sha256:" + "a" * 64,
    }


def progress(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": "progress",
        "value": draw(st.one_of(st.floats(-(10**6), 10**9), st.just("{{ points }}"))),
        "goal": draw(st.one_of(st.floats(-10, 10**9), st.just("{{ points }}"))),
        "label": draw(st.one_of(text, template)).replace("{", "("),
    }


def code(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": "code",
        "symbology": draw(st.sampled_from(["qr", "code128", "ean13", "upca"])),
        "value": draw(st.sampled_from(["{{ points }}", "{{ first_name }}", "A-{{ points }}"])),
        "quiet_zone": draw(st.one_of(st.none(), st.integers(0, 12))),
        "padding": draw(st.integers(0, 40)),
        "text": draw(st.booleans()),
        "error_correction": draw(st.sampled_from(["L", "M", "Q", "H"])),
    }


STRATEGIES: dict[str, Callable[[st.DrawFn], dict[str, Any]]] = {
    "banner": banner,
    "card": card,
    "code": code,
    "countdown": countdown,
    "progress": progress,
}


def test_every_block_type_has_a_strategy() -> None:
    assert set(registry()) == set(STRATEGIES)


@st.composite
def render_case(draw: st.DrawFn) -> tuple[Any, RenderRequest]:
    block_type = draw(st.sampled_from(sorted(STRATEGIES)))
    params = CONTENT.validate_python(STRATEGIES[block_type](draw))
    scale = draw(st.integers(1, 2))
    width = draw(st.integers(1, 700)) * scale
    height = draw(st.integers(1, 300)) * scale
    request = RenderRequest(
        width=width,
        height=height,
        fields=draw(fields),
        moment=NOW,
        scale=scale,
        first_open=NOW,
        accepts_webp=draw(st.booleans()),
    )
    return params, request


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(render_case())
def test_renderers_return_a_valid_image_of_the_promised_size(
    case: tuple[Any, RenderRequest],
) -> None:
    params, request = case
    renderer = registry()[params.type]
    try:
        encoded = renderer.render_encoded(params, request)
    except ContentUnavailable:
        return  # documented: the server serves the block's fallback
    image = Image.open(io.BytesIO(encoded.body))
    image.load()
    assert image.size == (request.width, request.height)
    assert encoded.media_type == Image.MIME[image.format or ""]


# odd profile values


@dataclass(frozen=True)
class OddValueCase:
    """Params of one block type that read profile fields in every way it can."""

    document: dict[str, Any]
    may_be_unavailable: bool = False
    """Whether the block documents ``ContentUnavailable`` for unusable fields."""


ODD_VALUE_CASES: dict[str, OddValueCase] = {
    "banner": OddValueCase(
        {
            "type": "banner",
            "background": "#0B7A75",
            "defaults": {"points": "0"},
            "lines": [
                {"text": "Hallo {{ first_name | upper }}", "font_size": 40},
                {"text": "{{ points * 2 }} points to {{ city | default('the sun') }}"},
            ],
        }
    ),
    "card": OddValueCase(
        {
            "type": "card",
            "image_asset": "sha256:" + "a" * 64,
            "title": {"text": "{{ item_title | upper }}"},
            "subtitle": {"text": "{{ item_description }}"},
            "price": "{{ item_price * 2 }}",
            "old_price": "{{ item_old_price }}",
            "badge": {"text": "{{ discount }}"},
            "cta": {"text": "Shop {{ first_name }}"},
            "defaults": {"item_title": "Our offer"},
        }
    ),
    "code": OddValueCase(
        {"type": "code", "symbology": "qr", "value": "T-{{ loyalty_id }}"},
        may_be_unavailable=True,
    ),
    "countdown": OddValueCase(
        {
            "type": "countdown",
            "deadline_field": "deadline",
            "time_zone": "recipient",
            "frames": 2,
            "expired_text": "Over",
        },
        may_be_unavailable=True,
    ),
    "progress": OddValueCase(
        {
            "type": "progress",
            "value": "{{ points * 2 }}",
            "goal": "{{ goal }}",
            "label": "{{ first_name }} {{ remaining }} points to Gold",
            "locale": "en_GB",
        }
    ),
}
MISSING = object()
"""Stands for "the profile has none of the fields"."""
ODD_VALUES: list[Any] = [
    pytest.param(MISSING, id="missing"),
    None,
    "",
    " ",
    "abc",
    "NaN",
    "inf",
    "-inf",
    "-5",
    -1,
    0,
    -1e300,
    1e300,
    pytest.param(10**5000, id="int-of-5000-digits"),
    float("nan"),
    float("-inf"),
    [],
    {"a": 1},
    True,
    pytest.param("9" * 10_000, id="10000-nines"),
    pytest.param("x" * 10_000, id="one-10000-letter-word"),
    pytest.param("word " * 2_000, id="2000-words"),
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "\u202eevil\u0000",
]
ODD_VALUE_SIZES = [((600, 200), 1), ((600, 60), 1), ((120, 40), 1), ((40, 20), 3), ((1, 1), 1)]


def test_every_block_type_has_an_odd_value_case() -> None:
    assert set(registry()) == set(ODD_VALUE_CASES)


@pytest.mark.parametrize("block_type", sorted(ODD_VALUE_CASES))
@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_field_values_never_break_a_render(block_type: str, value: Any) -> None:
    case = ODD_VALUE_CASES[block_type]
    params = CONTENT.validate_python(case.document)
    renderer = registry()[block_type]
    used = renderer.fields_used(params)
    assert used, "the case must read profile fields"
    fields = {} if value is MISSING else dict.fromkeys(used, value)
    assets = {
        asset: Image.new("RGB", (40, 30), "#3B82F6") for asset in renderer.assets_used(params)
    }
    for (width, height), scale in ODD_VALUE_SIZES:
        request = RenderRequest(
            width * scale, height * scale, fields, moment=NOW, scale=scale, assets=assets
        )
        try:
            encoded = renderer.render_encoded(params, request)
        except ContentUnavailable:
            assert case.may_be_unavailable, f"{block_type} gave up on a {type(value).__name__}"
            continue
        image = Image.open(io.BytesIO(encoded.body))
        image.load()
        assert image.size == (width * scale, height * scale)
