"""The README and docs/ document this repository and nothing else: every relative link resolves
to a file here (and to a heading, when it names one), nothing points outside the repository,
every page in docs/ is listed in the README, and the README stays short enough to read at once.
What the docs tell an operator to configure is enough: Blanco runs as the ACL user that
docs/redis.md gives, on one Redis and on a Redis Cluster."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from models.campaigns.specs import BLOCK_SERVER_FIELDS
from server import create_app
from server.demo.data import load_demo
from server.demo.routes import bp as demo_page
from server.services import EXTENSION, Services
from tests.conftest import SIGNING_KEY
from tests.factories import jsonl
from tests.redis_servers import RedisClusterProcesses, RedisProcess

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


# the ACL user of docs/redis.md

ACL_USER = re.compile(r"^\s*user blanco (.+)$", re.MULTILINE)
IGNORED_REFUSALS = {"client"}
"""redis-py sends CLIENT SETINFO when it connects and ignores a refusal (docs/redis.md)."""
NDJSON = "application/x-ndjson"


def documented_acl() -> tuple[list[str], list[str]]:
    """The ACL rules docs/redis.md gives Blanco's user: for every Redis, and for a cluster."""
    everywhere, cluster_only = ACL_USER.findall((DOCS / "redis.md").read_text(encoding="utf-8"))
    return everywhere.split(), cluster_only.split()


def add_user(control: redis.Redis, rules: Sequence[str], password: str) -> None:
    """Create the ACL user ``blanco`` with ``rules`` (its documented password replaced)."""
    given = [f">{password}" if rule.startswith(">") else rule for rule in rules]
    control.execute_command("ACL", "SETUSER", "blanco", "reset", *given)
    control.acl_log_reset()


def refused(controls: Sequence[redis.Redis]) -> set[str]:
    """The commands and keys any of the servers refused to the user since its log was reset."""
    found = set()
    for control in controls:
        for entry in control.acl_log():
            found.add(f"{entry['reason']}: {entry['object']}")
    return {item for item in found if item.split(": ")[1] not in IGNORED_REFUSALS}


def run_everything(app: Flask) -> list[str]:
    """The demo, its opens and clicks, slots, the web view, AMP, the channel endpoint and the
    demo page, the admin API's kinds of write and read, the jobs and an erasure. Returns what
    did not answer as it should."""
    services: Services = app.extensions[EXTENSION]
    links = load_demo(services)
    client = app.test_client()
    _, admin = services.api_keys.create("acl", ["admin"])
    _, channel = services.api_keys.create("acl-channel", ["channel"])
    headers = {"Authorization": f"Bearer {admin}"}
    wrong: list[str] = []

    def call(method: str, path: str, status: int | None = None, **options: Any) -> Any:
        given = {**headers, **options.pop("headers", {})}
        answer = client.open(path, method=method, headers=given, **options)
        fell_back = answer.headers.get("X-Blanco-Fallback", "")
        if answer.status_code >= 500 or status not in (None, answer.status_code):
            wrong.append(f"{method} {path}: {answer.status_code}")
        elif fell_back.startswith("redis") or fell_back == "last resort":
            wrong.append(f"{method} {path}: {fell_back}")
        return answer

    base = services.settings.public_url
    for link in links:
        call("GET", link.image_url.removeprefix(base))
        call("GET", link.click_url.removeprefix(base))
    send = call("GET", "/api/v1/campaigns/daily/sends", 200).get_json()["sends"][0]["id"]
    anna = f"r={services.signer.sign('anna')}&s={send}"
    for path in ("/s/daily/1.png", "/s/daily/1", "/v/daily", "/amp/daily/items.json", "/demo"):
        call("GET", f"{path}?{anna}", headers={"AMP-Email-Sender": "news@example.com"})
    channel_headers = {"Authorization": f"Bearer {channel}"}
    call("GET", f"/x/v1/campaigns/daily/slots?{anna}", 200, headers=channel_headers)
    call("GET", "/readyz", 200)
    blocks = "/api/v1/campaigns/daily/blocks"
    hero = call("GET", f"{blocks}/hero", 200).get_json()
    edited = {k: v for k, v in hero.items() if k not in BLOCK_SERVER_FIELDS}
    call("PUT", f"{blocks}/hero", 200, json=edited)
    for path in (blocks, f"{blocks}/hero/versions", "/api/v1/campaigns/daily/report"):
        call("GET", path, 200)
    orders = ({"order_id": f"o{n}", "amount": "10", "currency": "EUR"} for n in range(3))
    visits = ({"type": "site_visit", "event_id": f"e{n}"} for n in range(3))
    for path, rows in (("/api/v1/transactions/bulk", orders), ("/api/v1/events/bulk", visits)):
        dated = [{"recipient_id": "bram", "at": "2026-11-20T12:00:00+01:00", **r} for r in rows]
        call("POST", path, 200, data=jsonl(*dated), content_type=NDJSON)
    call("GET", "/api/v1/recipients/bram/events", 200)
    call("POST", "/api/v1/segmentation/run", 200, json={})
    call("PUT", "/api/v1/live/flights", 200, json={"values": {"seats": 3}, "max_age_seconds": 60})
    call("GET", "/api/v1/api-keys", 200)
    call("POST", "/api/v1/campaigns/daily/sends", 200, json={"format": "csv"})
    call("DELETE", "/api/v1/recipients/anna", 204)
    call("GET", "/api/v1/audit/erasures", 200)
    personal = call("GET", links[1].image_url.removeprefix(base))
    if "X-Blanco-Fallback" in personal.headers:  # bram: personalised, as served
        wrong.append(f"bram's image fell back: {personal.headers['X-Blanco-Fallback']}")
    return wrong


def acl_app(url: str, data: Path) -> Flask:
    """An app on ``url`` (the ACL user's), as the demo runs it, keeping 2 events a recipient."""
    app = create_app(
        {
            "redis_url": url,
            "signing_keys": SIGNING_KEY,
            "data_dir": data,
            "public_url": "http://blanco.test",
            "record_in_background": False,
            "config_check_seconds": 0,
            "events_kept_per_recipient": 2,
            "amp_allowed_senders": "news@example.com",
        }
    )
    app.register_blueprint(demo_page)
    return app


@pytest.fixture
def acl_cluster(redis_cluster: RedisClusterProcesses) -> Iterator[RedisClusterProcesses]:
    """The session's cluster, emptied, without the ACL user afterwards."""
    redis_cluster.reset()
    yield redis_cluster
    for node in redis_cluster.nodes:
        with node.client() as control:
            control.execute_command("ACL", "DELUSER", "blanco")
    redis_cluster.reset()


@pytest.mark.own_redis
def test_blanco_runs_as_the_documented_acl_user_on_one_redis(tmp_path: Path) -> None:
    everywhere, _ = documented_acl()
    password = secrets.token_hex(12)
    with RedisProcess(tmp_path / "redis") as server, server.client() as control:
        add_user(control, everywhere, password)
        host, port = server.address
        app = acl_app(f"redis://blanco:{password}@{host}:{port}/0", tmp_path / "data")
        assert run_everything(app) == []
        assert refused([control]) == set()


@pytest.mark.own_redis
def test_blanco_runs_as_the_documented_acl_user_on_a_cluster(
    acl_cluster: RedisClusterProcesses, tmp_path: Path
) -> None:
    everywhere, cluster_only = documented_acl()
    password = secrets.token_hex(12)
    controls = [node.client() for node in acl_cluster.nodes]
    try:
        for control in controls:
            add_user(control, [*everywhere, *cluster_only], password)
        hosts = ",".join(f"127.0.0.1:{port}" for port in acl_cluster.ports)
        app = acl_app(f"redis+cluster://blanco:{password}@{hosts}", tmp_path / "data")
        assert run_everything(app) == []
        assert refused(controls) == set()
    finally:
        for control in controls:
            control.close()


@pytest.mark.own_redis
def test_the_acl_check_catches_a_missing_command(tmp_path: Path) -> None:
    everywhere, _ = documented_acl()
    assert "+hgetall" in everywhere
    password = secrets.token_hex(12)
    with RedisProcess(tmp_path / "redis") as server, server.client() as control:
        add_user(control, [r for r in everywhere if r != "+hgetall"], password)
        host, port = server.address
        app = acl_app(f"redis://blanco:{password}@{host}:{port}/0", tmp_path / "data")
        with pytest.raises(redis.exceptions.NoPermissionError):
            run_everything(app)
        assert "command: hgetall" in refused([control])
