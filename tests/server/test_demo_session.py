"""A running demo's ``data/demo.env``: locked while the demo runs, `source`-able, and what the
other ``blanco`` commands fall back to when the environment names no Redis and no key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from server.cli.main import main
from server.demo.session import DemoSession, demo_env_path, running_demo
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.factories import store_block

DEMO_URL = "http://127.0.0.1:8123"


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty current folder and no Blanco environment (the default data folder: ./data)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name in [n for n in os.environ if n.startswith("BLANCO_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def demo_values(redis_url: str) -> dict[str, str]:
    """What a demo on the test Redis would write."""
    return {
        "REDIS_URL": redis_url,
        "BLANCO_PUBLIC_URL": DEMO_URL,
        "BLANCO_SIGNING_KEYS": SIGNING_KEY,
        "BLANCO_AMP_ALLOWED_SENDERS": "news@example.com",
    }


def test_the_file_exists_and_reads_only_while_the_demo_holds_it(here: Path) -> None:
    values = {"REDIS_URL": "unix:///a b/redis.sock", "BLANCO_PUBLIC_URL": "http://x:1/?a='b'"}
    data = here / "data"
    assert running_demo(data) is None

    with DemoSession(data, values):
        assert running_demo(data) == values
        assert demo_env_path(data).stat().st_mode & 0o777 == 0o600

    assert running_demo(data) is None
    assert not demo_env_path(data).exists()


def test_a_file_left_by_a_demo_that_died_is_ignored(
    here: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = demo_env_path(here / "data")
    stale.parent.mkdir()
    stale.write_text("".join(f"export {k}={v}\n" for k, v in demo_values(redis_url).items()))

    assert running_demo(here / "data") is None
    assert main(["api-key", "--name", "ops", "--scope", "admin"]) == 2
    assert capsys.readouterr().err.startswith("blanco: BLANCO_SIGNING_KEYS is not set")


def test_a_shell_can_source_it(here: Path) -> None:
    values = {"BLANCO_PUBLIC_URL": "http://x:1/?a='b' $HOME", "REDIS_URL": "unix:///r.sock"}
    with DemoSession(here / "data", values):
        shown = subprocess.run(
            ["sh", "-c", '. data/demo.env && sh -c \'printf "%s|%s" "$BLANCO_PUBLIC_URL" '
             '"$REDIS_URL"\''],
            cwd=here, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    assert shown == "http://x:1/?a='b' $HOME|unix:///r.sock"


def test_commands_use_a_running_demo_when_the_environment_names_nothing(
    here: Path, redis_url: str, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    store_block(services, [])
    with DemoSession(here / "data", demo_values(redis_url)):
        assert main(["embed", "daily", "hero", "--esp", "mailchimp"]) == 0

    captured = capsys.readouterr()
    note = f"using the running demo's Redis and key ({Path('data') / 'demo.env'})"
    assert captured.err.splitlines()[0] == note
    assert captured.out.startswith(f'<a href="{DEMO_URL}/c/daily/hero?r=*|BL_TOKEN|*">')


def test_the_environment_wins_over_a_running_demo(
    here: Path,
    redis_url: str,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store_block(services, [])
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    with DemoSession(here / "data", demo_values(redis_url)):
        assert main(["embed", "daily", "hero", "--esp", "mailchimp"]) == 0

    captured = capsys.readouterr()
    assert "running demo" not in captured.err
    assert captured.out.startswith('<a href="http://localhost:8000/c/daily/hero?')
