"""Every registered block type, fed random text, sizes and parameters, returns a valid image of
the promised size and never raises (property-based, with hypothesis)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

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


STRATEGIES: dict[str, Callable[[st.DrawFn], dict[str, Any]]] = {
    "banner": banner,
    "card": card,
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
