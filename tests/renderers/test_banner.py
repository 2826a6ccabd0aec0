"""The banner renderer: reference images for placeholders, defaults, wrap/shrink, RTL, dpr=2."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from renderers.banner import BannerParams
from renderers.base import ContentUnavailable, RenderRequest
from renderers.registry import ContentParams, renderer_for
from renderers.text_layout import ELLIPSIS, fit
from tests.renderers.reference import assert_matches_reference

BANNER = renderer_for("banner")
CONTENT: TypeAdapter[Any] = TypeAdapter(ContentParams)


def params(**extra: Any) -> BannerParams:
    document = {
        "type": "banner",
        "background": "#0B7A75",
        "defaults": {"first_name": "traveller"},
        "lines": [
            {
                "text": "Hallo {{ first_name }}",
                "font_size": 40,
                "color": "#FFFFFF",
                "weight": "bold",
            },
            {
                "text": "Your trip to {{ city | default('the sun') }} awaits",
                "font_size": 22,
                "color": "#FFFFFF",
            },
        ],
        **extra,
    }
    parsed: BannerParams = CONTENT.validate_python(document)
    return parsed


def render(
    p: BannerParams,
    fields: dict[str, Any] | None = None,
    scale: int = 1,
    size: tuple[int, int] = (600, 200),
) -> Image.Image:
    return BANNER.render(
        p, RenderRequest(size[0] * scale, size[1] * scale, fields or {}, scale=scale)
    )


def test_placeholders_filled_from_the_profile() -> None:
    assert_matches_reference(
        render(params(), {"first_name": "Anna", "city": "Lisbon"}), "banner_placeholders"
    )


def test_missing_fields_take_their_defaults() -> None:
    image = render(params(), {"first_name": ""})
    assert_matches_reference(image, "banner_defaults")
    assert image.tobytes() == render(params(), {}).tobytes()


@pytest.mark.parametrize("odd", [10**5000, {"a": 1}], ids=["int-of-5000-digits", "mapping"])
def test_profile_values_that_break_a_line_give_way_to_its_defaults(odd: object) -> None:
    p = params(
        defaults={"first_name": "traveller", "points": "0"},
        lines=[{"text": "Hallo {{ first_name }}, {{ points * 2 }} points", "font_size": 30}],
    )
    broken = render(p, {"first_name": odd, "points": odd})
    assert broken.tobytes() == render(p, {}).tobytes()  # "Hallo traveller, 00 points"
    assert broken.tobytes() != render(p, {"first_name": "Anna", "points": 2}).tobytes()


@pytest.mark.parametrize("points", [None, {"a": 1}])
def test_a_line_even_its_defaults_cannot_fill_is_content_unavailable(points: object) -> None:
    p = params(lines=[{"text": "{{ points + 100 }} points after your next order"}])
    with pytest.raises(ContentUnavailable):
        render(p, {"points": points})


def test_a_template_that_fails_whatever_the_profile_still_raises() -> None:
    # the server serves the fallback for a broken template ("render error")
    with pytest.raises(ZeroDivisionError):
        render(params(lines=[{"text": "{{ 1 / 0 }}"}]), {"first_name": "Anna"})


def test_long_text_wraps_and_shrinks() -> None:
    long_text = "An exceptionally long headline that cannot possibly fit on one line at this size"
    p = params(lines=[{"text": long_text, "font_size": 48, "color": "#FFFFFF", "max_lines": 2}])
    assert_matches_reference(render(p), "banner_wrap_shrink")


def test_a_long_name_keeps_the_headline_above_the_body_line() -> None:
    name = "Maximiliana Wilhelmina-Theodora von Hohenzollern-Sigmaringen"
    assert_matches_reference(render(params(), {"first_name": name}), "banner_long_name")


def test_right_to_left_and_non_latin_text() -> None:
    p = params(
        lines=[
            {
                "text": "مرحبا {{ first_name }} — שלום — Привет — Γειά",
                "font_size": 32,
                "color": "#FFFFFF",
                "family": "inter",
            }
        ]
    )
    assert_matches_reference(render(p, {"first_name": "Anna"}), "banner_rtl")


def test_dpr_2_renders_twice_the_pixels() -> None:
    image = render(params(), {"first_name": "Anna"}, scale=2)
    assert image.size == (1200, 400)
    assert_matches_reference(image, "banner_dpr2")


def test_gradient_background() -> None:
    p = params(gradient={"from": "#FF512F", "to": "#DD2476", "direction": "horizontal"})
    image = render(p, {"first_name": "Anna"})
    assert image.getpixel((0, 100)) != image.getpixel((599, 100))
    assert_matches_reference(image, "banner_gradient")


def test_fit_never_cuts_a_word_and_ellipsizes_as_a_last_resort() -> None:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    fitted = fit(
        " ".join(words),
        family="dejavu-sans",
        weight="regular",
        size=30,
        max_width=200,
        max_height=40,
        max_lines=1,
        line_spacing=1.2,
    )
    assert len(fitted.lines) == 1
    assert fitted.lines[0].endswith(ELLIPSIS)
    kept = fitted.lines[0].removesuffix(ELLIPSIS).split()
    assert all(word in words for word in kept[:-1])  # whole words until the ellipsis
    roomy = fit(
        "alpha beta",
        family="dejavu-sans",
        weight="regular",
        size=30,
        max_width=600,
        max_height=100,
        max_lines=2,
        line_spacing=1.2,
    )
    assert roomy.lines == ["alpha beta"]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"background": "red"}, "background"),
        ({"lines": []}, "lines"),
        ({"lines": [{"text": "{{ unclosed"}]}, "text"),
        ({"lines": [{"text": "x", "family": "comic-sans"}]}, "family"),
        ({"background_image": "http://evil.example/x.png"}, "background_image"),
    ],
)
def test_invalid_params_name_the_field(change: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ValidationError) as caught:
        params(**change)
    assert any(pointer in [str(p) for p in e["loc"]] for e in caught.value.errors())


def test_filled_text_is_capped_at_the_maximum_length() -> None:
    one_line = params(lines=[{"text": "{{ note }}", "font_size": 12, "color": "#FFFFFF"}])

    def drawn(note: str, max_text_length: int) -> bytes:
        request = RenderRequest(600, 200, {"note": note}, max_text_length=max_text_length)
        return BANNER.render(one_line, request).tobytes()

    words = " ".join(f"w{n:03d}" for n in range(100))  # 499 characters
    assert drawn(words, 60) == drawn(words[:60], 1000)
    assert drawn(words, 60) != drawn(words[:61], 1000)
    assert drawn(words, 200) == drawn(words[:200], 1000)


def banded_asset() -> tuple[str, Image.Image]:
    """A 90×90 image in three horizontal bands (red, green, blue) and an asset id for it."""
    image = Image.new("RGB", (90, 90), "#FF0000")
    image.paste((0, 255, 0), (0, 30, 90, 60))
    image.paste((0, 0, 255), (0, 60, 90, 90))
    return "sha256:" + hashlib.sha256(image.tobytes()).hexdigest(), image


def on_background(fit: str) -> Image.Image:
    asset_id, image = banded_asset()
    p = params(
        background="#FFFF00",
        background_image=asset_id,
        background_fit=fit,
        lines=[{"text": "", "font_size": 12, "color": "#000000"}],
    )
    return BANNER.render(p, RenderRequest(300, 90, {}, assets={asset_id: image}))


def near(pixel: Any, color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 24 for a, b in zip(pixel[:3], color, strict=True))


def test_a_background_image_covers_contains_or_stretches() -> None:
    red, green, blue, yellow = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
    stretched = on_background("stretch")  # the whole image, distorted to 300×90
    assert near(stretched.getpixel((5, 5)), red)
    assert near(stretched.getpixel((295, 45)), green)
    assert near(stretched.getpixel((150, 85)), blue)
    covered = on_background("cover")  # 300×300, cropped to its middle 90 rows: all green
    for point in ((5, 5), (150, 45), (295, 85)):
        assert near(covered.getpixel(point), green), point
    contained = on_background("contain")  # 90×90 in the middle, the colour on both sides
    for point in ((5, 45), (295, 45)):
        assert near(contained.getpixel(point), yellow), point
    assert near(contained.getpixel((150, 5)), red)
    assert near(contained.getpixel((150, 85)), blue)


def test_without_its_asset_the_banner_draws_its_colour() -> None:
    asset_id, _ = banded_asset()
    p = params(background="#FFFF00", background_image=asset_id)
    image = BANNER.render(p, RenderRequest(300, 90, {}))
    assert near(image.getpixel((2, 2)), (255, 255, 0))
