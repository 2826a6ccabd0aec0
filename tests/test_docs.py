"""The README and docs/ document this repository and nothing else: every relative link resolves
to a file here (and to a heading, when it names one), nothing points outside the repository,
every page in docs/ is listed in the README, and the README stays short enough to read at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
WEB = ("http://", "https://", "mailto:")
OUTSIDE = ("../shared", "/work/", "/home/", "/tmp/", "steering", "DESIGN.md", "STYLE.md")
"""Text that would point a reader outside the repository (its own design is docs/design.md)."""


def prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("code", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, numbered the way GitHub numbers repeated ones."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def link_problems(page: Path, root: Path) -> list[str]:
    """What is wrong with the links of ``page``: each a readable sentence."""
    text = prose(page.read_text(encoding="utf-8"))
    problems = []
    for target in INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text):
        if target.startswith(WEB):
            continue
        if ":" in target.split("#")[0]:
            problems.append(f"{target}: only repository files and web pages may be linked")
            continue
        path_part, _, anchor = target.partition("#")
        if path_part.startswith("/"):
            problems.append(f"{target}: an absolute path; link relative to the page")
            continue
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {linked.name}")
    return problems


def outside_references(page: Path) -> list[str]:
    """Mentions in ``page`` (code included) of places outside the repository."""
    text = page.read_text(encoding="utf-8")
    return [marker for marker in OUTSIDE if marker in text]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_links_resolve_inside_the_repository(page: Path) -> None:
    assert link_problems(page, ROOT) == []
    assert outside_references(page) == []


def test_the_readme_is_read_in_one_sitting() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_the_readme_lists_every_docs_page() -> None:
    listed = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in INLINE_LINK.findall(prose(README.read_text(encoding="utf-8")))
        if target.startswith("docs/")
    }
    assert PAGES[1:], "docs/ has no pages"
    assert [p.name for p in PAGES[1:] if p.resolve() not in listed] == []


def test_the_checks_catch_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Two words\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n"
        "[fine](other.md#two-words) [fine too](#page) [web](https://example.com)\n"
        "`[not a link](missing.md)`\n"
        "```\n[not a link either](missing.md)\n```\n"
        "[gone](missing.md) [no heading](other.md#three) [up](../../elsewhere.md)\n"
        "[absolute](/etc/hosts) [file](file:///etc/hosts)\n"
        "See ../shared/DESIGN.md.\n"
    )
    assert link_problems(page, tmp_path) == [
        "missing.md: no such file",
        "other.md#three: no heading #three in other.md",
        "../../elsewhere.md: outside the repository",
        "/etc/hosts: an absolute path; link relative to the page",
        "file:///etc/hosts: only repository files and web pages may be linked",
    ]
    assert outside_references(page) == ["../shared", "DESIGN.md"]


def test_anchors_follow_github() -> None:
    page_text = "# The `blanco` command\n## Redis keys\n## Redis keys\n## Web view, AMP & more\n"
    assert [slug(h) for h in HEADING.findall(page_text)] == [
        "the-blanco-command",
        "redis-keys",
        "redis-keys",
        "web-view-amp--more",
    ]
