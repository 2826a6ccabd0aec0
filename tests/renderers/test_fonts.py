"""Bundled fonts: every face loads, every family has its licence, glyph coverage is exact."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageChops, ImageDraw, ImageFont

from renderers.fonts import (
    DEFAULT_FAMILY,
    FONT_DIR,
    FONT_FILES,
    FONT_LICENSES,
    Weight,
    covered_code_points,
    families,
    font_for_text,
    font_runs,
    has_glyphs,
    load_font,
    missing_glyphs,
)

NAMES = {"dejavu-sans": "DejaVu Sans", "inter": "Inter"}
STYLES = {"regular": ("Book", "Regular"), "bold": ("Bold",)}
SAMPLES = "AaЖжΩαשعñ€中😀🦄☃✈"
NOT_A_CHARACTER = "\U0010fffd"  # plane 16 private use: no bundled font draws it


@pytest.mark.parametrize(("family", "weight"), list(FONT_FILES))
def test_every_face_loads_with_its_name_and_style(family: str, weight: Weight) -> None:
    font = ImageFont.truetype(str(FONT_DIR / FONT_FILES[(family, weight)]), size=24)
    name, style = font.getname()
    assert name == NAMES[family]
    assert style in STYLES[weight]
    assert load_font(family, weight, 24).getname() == (name, style)


def test_default_family_and_unknown_families() -> None:
    assert DEFAULT_FAMILY == "dejavu-sans"
    assert load_font("no-such-family", "bold", 20).getname() == ("DejaVu Sans", "Bold")


@pytest.mark.parametrize("family", sorted({family for family, _ in FONT_FILES}))
def test_every_family_ships_its_licence(family: str) -> None:
    licence = FONT_LICENSES[family]
    text = (FONT_DIR / licence.file).read_text()
    assert licence.name
    if licence.spdx == "OFL-1.1":
        assert "Open Font License" in text
        assert "Copyright: 2016-2022 The Inter Project Authors" in text
    else:
        assert "Bitstream" in text


def test_families_list_weights_and_licences() -> None:
    listed = {f["family"]: f for f in families()}
    assert listed["inter"] == {
        "family": "inter",
        "weights": ["regular", "bold"],
        "default": False,
        "license": "SIL Open Font License 1.1",
        "license_spdx": "OFL-1.1",
        "license_file": "LICENSE-Inter.txt",
    }
    assert listed["dejavu-sans"]["default"] is True
    assert listed["dejavu-sans"]["license_spdx"] == "Bitstream-Vera"


def test_fonts_api_lists_licences(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/fonts", headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json() == families()


def ink(font: ImageFont.FreeTypeFont, text: str) -> Image.Image:
    """``text`` drawn black on white, on a canvas of fixed size."""
    image = Image.new("L", (400, 80), 255)
    ImageDraw.Draw(image).text((10, 10), text, font=font, fill=0)
    return image


def test_inter_bold_is_bold_and_differs_from_dejavu() -> None:
    regular, bold = load_font("inter", "regular", 32), load_font("inter", "bold", 32)
    assert bold.getlength("Hello") > regular.getlength("Hello")
    dark = [sum(ink(f, "Hello").histogram()[:128]) for f in (regular, bold)]
    assert dark[1] > dark[0] * 1.2
    dejavu = load_font("dejavu-sans", "regular", 32)
    assert ImageChops.difference(ink(regular, "Hello"), ink(dejavu, "Hello")).getbbox()


@pytest.mark.parametrize(
    ("text", "inter", "dejavu"),
    [
        ("Hello, World! 123 €", True, True),
        ("Привет, Αθήνα, Łódź, São Paulo", True, True),
        ("שלום", False, True),
        ("مرحبا", False, True),
        ("Բարեւ", False, True),
        ("Hi ☃", False, True),
        ("中文", False, False),
        ("😀", False, True),
        ("🦄", False, False),
    ],
)
def test_coverage(text: str, inter: bool, dejavu: bool) -> None:
    assert has_glyphs(load_font("inter", "regular", 20), text) is inter
    assert has_glyphs(load_font("dejavu-sans", "regular", 20), text) is dejavu


def test_missing_glyphs_lists_each_once_and_ignores_invisible_characters() -> None:
    inter = load_font("inter", "bold", 20)
    assert missing_glyphs(inter, "שלום שלום Anna") == "שלום"
    assert missing_glyphs(inter, "a\u200db\ufe0fc\n\td\u00ad") == ""


@pytest.mark.parametrize(("family", "weight"), list(FONT_FILES))
def test_coverage_agrees_with_what_freetype_draws(family: str, weight: Weight) -> None:
    """A character the cmap lacks draws exactly the .notdef box; one it has draws otherwise."""
    font = load_font(family, weight, 24)
    notdef = font.getmask(NOT_A_CHARACTER)
    assert not has_glyphs(font, NOT_A_CHARACTER)
    for char in SAMPLES:
        mask = font.getmask(char)
        draws_notdef = mask.size == notdef.size and bytes(mask) == bytes(notdef)
        assert has_glyphs(font, char) is not draws_notdef, char


def test_covered_code_points_are_cached_per_file() -> None:
    path = str(FONT_DIR / FONT_FILES[("inter", "regular")])
    assert covered_code_points(path) is covered_code_points(path)
    assert {ord("A"), ord("Ж"), ord("€")} <= covered_code_points(path)
    assert 0xFFFF not in covered_code_points(path)


def test_font_for_text_falls_back_for_the_whole_text() -> None:
    inter = load_font("inter", "regular", 20)
    dejavu = load_font("dejavu-sans", "regular", 20)
    assert font_for_text("Hello", "inter", "regular", 20) is inter
    assert font_for_text("Hello שלום", "inter", "regular", 20) is dejavu
    assert font_for_text("中文", "inter", "regular", 20) is inter  # no font has it: keep Inter
    assert font_for_text("שלום", "dejavu-sans", "regular", 20) is dejavu


def test_font_runs_switch_font_only_where_needed() -> None:
    inter = load_font("inter", "bold", 20)
    dejavu = load_font("dejavu-sans", "bold", 20)
    runs = font_runs("Fly ✈ to Paris", "inter", "bold", 20)
    assert runs == [("Fly ", inter), ("✈ ", dejavu), ("to Paris", inter)]
    assert font_runs("Hello", "inter", "bold", 20) == [("Hello", inter)]
    assert font_runs("", "inter", "bold", 20) == []
    assert font_runs("Hi ✈", "dejavu-sans", "bold", 20) == [("Hi ✈", dejavu)]
