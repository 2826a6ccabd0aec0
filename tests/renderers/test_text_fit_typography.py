"""Typographic minus signs, quotes and apostrophes in rendered text, per language, and the
bundled fonts have their glyphs."""

from __future__ import annotations

from typing import Any

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from renderers.banner import BannerParams
from renderers.base import RenderRequest
from renderers.card import RENDERER as CARD
from renderers.card import CardParams, resolve_content
from renderers.fonts import FONT_DIR, FONT_FILES
from renderers.progress import RENDERER as PROGRESS
from renderers.progress import ProgressParams
from renderers.registry import renderer_for
from renderers.templating import typeset

BANNER = renderer_for("banner")
TYPOGRAPHIC = "\u2212\u2018\u2019\u201c\u201d\u201e\u201a\u00ab\u00bb\u202f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-17%", "\u221217%"),
        ("Save -20% today", "Save \u221220% today"),
        ("Balance: -€5 (-3)", "Balance: \u2212€5 (\u22123)"),
        ("COVID-19, 10-20 May, well-known, - item", "COVID-19, 10-20 May, well-known, - item"),
        ("O'Brien, don't miss it", "O\u2019Brien, don\u2019t miss it"),
        ("the students' deal, '90s hits", "the students\u2019 deal, \u201990s hits"),
        ('"Hello," she said', "\u201cHello,\u201d she said"),
        ("The 'best' deal", "The \u2018best\u2019 deal"),
        ("no punctuation here", "no punctuation here"),
    ],
)
def test_english_typography(text: str, expected: str) -> None:
    assert typeset(text) == expected
    assert typeset(text, "en_GB") == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("nl_NL", "\u201cHallo\u201d en \u2018Welt\u2019, O\u2019Brien"),
        ("de_DE", "\u201eHallo\u201c en \u201aWelt\u2018, O\u2019Brien"),
        ("fr_FR", "\u00ab\u202fHallo\u202f\u00bb en \u2018Welt\u2019, O\u2019Brien"),
        ("sv_SE", "\u201cHallo\u201d en \u2018Welt\u2019, O\u2019Brien"),  # English-style
    ],
)
def test_quotes_follow_the_language(locale: str, expected: str) -> None:
    assert typeset("\"Hallo\" en 'Welt', O'Brien", locale) == expected


@pytest.mark.parametrize("file", sorted(FONT_FILES.values()))
def test_the_bundled_fonts_have_the_typographic_glyphs(file: str) -> None:
    with TTFont(FONT_DIR / file) as font:
        cmap = font.getBestCmap()
    assert [c for c in TYPOGRAPHIC if ord(c) not in cmap] == []


def banner(text: str, **extra: Any) -> BannerParams:
    return BannerParams.model_validate({"lines": [{"text": text, "font_size": 30}], **extra})


def drawn(params: BannerParams, fields: dict[str, Any] | None = None) -> bytes:
    return BANNER.render(params, RenderRequest(600, 200, fields or {})).tobytes()


def test_a_banner_typesets_its_text_and_the_inserted_name() -> None:
    typographic = drawn(banner("\u201cHi O\u2019Brien\u201d: \u221220% today"))
    assert drawn(banner('"Hi {{ name }}": -20% today'), {"name": "O'Brien"}) == typographic
    assert drawn(banner('"Hi O\'Brien": -20% today', typography=False)) != typographic


def test_a_banner_uses_its_locale_for_quotes() -> None:
    german = drawn(banner("\u201eHallo\u201c"))
    assert drawn(banner('"Hallo"', locale="de_DE")) == german
    assert drawn(banner('"Hallo"')) != german  # English quotes by default


def test_a_card_typesets_its_texts_for_its_locale() -> None:
    params = CardParams.model_validate(
        {
            "title": {"text": '"{{ item_title }}"'},
            "badge": {"text": "-20%"},
            "cta": {"text": "Don't wait"},
            "locale": "de_DE",
        }
    )
    request = RenderRequest(600, 200, {"item_title": "Kopfhörer"})
    content = resolve_content(params, request)
    assert (content.title, content.badge, content.cta) == (
        "\u201eKopfhörer\u201c",
        "\u221220%",
        "Don\u2019t wait",
    )
    plain = resolve_content(params.model_copy(update={"typography": False}), request)
    assert (plain.title, plain.badge, plain.cta) == ('"Kopfhörer"', "-20%", "Don't wait")
    assert CARD.render(params, request).size == (600, 200)


def test_a_progress_label_shows_a_negative_value_with_a_minus_sign() -> None:
    def drawn_bar(label: str, **extra: Any) -> bytes:
        params = ProgressParams.model_validate(
            {"value": "{{ points }}", "goal": 100, "label": label, "locale": "en_GB", **extra}
        )
        return PROGRESS.render(params, RenderRequest(600, 150, {"points": -50})).tobytes()

    assert drawn_bar("{{ value }} points") == drawn_bar("\u221250 points")
    assert drawn_bar("{{ value }} points", typography=False) == drawn_bar(
        "-50 points", typography=False
    )
