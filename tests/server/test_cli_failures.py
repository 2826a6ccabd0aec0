"""Every ``blanco`` command ends a failure in one line on stderr, never a traceback: missing
keys, Redis unreachable, an embedded Redis already running, bad arguments, an unknown campaign,
a port in use. Short commands share the embedded Redis a running server already serves."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from models.storage import keys
from server.cli.main import main
from server.embedded_redis import EmbeddedRedis
from tests.conftest import SIGNING_KEY

PROFILE_ROW = {"recipient_id": "anna", "attributes": {"first_name": "Anna"}}
COMMANDS = {
    "api-key": ["api-key", "--name", "ops", "--scope", "admin"],
    "import": ["import", "profiles", "profiles.jsonl"],
    "segment": ["segment"],
    "audience": ["audience", "daily"],
    "embed": ["embed", "daily", "hero", "--esp", "mailchimp"],
}


def one_line(text: str) -> str:
    """The only line of ``text`` (fails unless there is exactly one)."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A folder with a profiles file and no Blanco environment at all; the current folder."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name in [n for n in os.environ if n.startswith("BLANCO_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles.jsonl").write_text(json.dumps(PROFILE_ROW) + "\n")
    return tmp_path


@pytest.fixture
def running_server_redis(bare: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedRedis]:
    """The embedded Redis a running ``blanco serve`` keeps in ``./data/redis``, with its key."""
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    with EmbeddedRedis(bare / "data" / "redis") as server:
        yield server


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_without_keys_or_a_demo_a_command_says_what_to_set(
    bare: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main(command) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("blanco: BLANCO_SIGNING_KEYS is not set: ")
    assert "`blanco demo`" in line
    assert captured.out == ""


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_unreachable_redis_is_one_line(
    bare: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)

    assert main(command) == 1

    line = one_line(capsys.readouterr().err)
    assert line.startswith("blanco: cannot reach Redis: ")
    assert "127.0.0.1:1" in line


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_command_uses_the_embedded_redis_a_running_server_serves(
    running_server_redis: EmbeddedRedis,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    main(command)

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[0] == (
        f"using the embedded Redis already running in {running_server_redis.data_dir}"
    )
    assert running_server_redis.running, "the server's Redis is left running"


def test_an_api_key_made_next_to_a_running_server_is_in_its_redis(
    running_server_redis: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(COMMANDS["api-key"]) == 0

    key_id = capsys.readouterr().out.split("_")[1]
    client = redis.Redis.from_url(running_server_redis.url)
    assert client.hexists(keys.API_KEYS, key_id)
    client.close()


@pytest.mark.parametrize(
    "command", [["serve", "--bind", "127.0.0.1:{port}"], ["demo", "--port", "{port}"]]
)
def test_serve_and_demo_refuse_a_data_folder_whose_redis_runs_in_one_line(
    running_server_redis: EmbeddedRedis,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    port = str(free_port())

    assert main([part.format(port=port) for part in command]) == 1

    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        f"blanco: another Redis already serves {running_server_redis.socket_path}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["launch"],
        ["embed"],
        ["embed", "daily", "hero", "--esp", "aweber"],
        ["audience", "daily", "--date", "2026-13-01"],
        ["audience", "daily", "--format", "xlsx"],
        ["import", "orders", "x.csv"],
        ["segment", "--at", "yesterday"],
        ["api-key", "--name", "ops"],
        ["demo", "--port", "eighty"],
        ["serve", "--workers", "many"],
    ],
)
def test_bad_arguments_are_one_line_pointing_at_help(
    bare: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(command)

    assert exited.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("blanco")
    assert line.endswith(" --help)")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["embed", "nope", "hero", "--esp", "mailchimp"], "blanco embed: no campaign 'nope'"),
        (["embed", "nope", "--newsletter", "--esp", "braze"], "blanco embed: no campaign 'nope'"),
        (["audience", "nope"], "blanco audience: campaign 'nope' has no newsletter"),
    ],
)
def test_an_unknown_campaign_is_one_line(
    bare: Path,
    redis_url: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    expected: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)

    assert main(command) == 1

    captured = capsys.readouterr()
    assert one_line(captured.err) == expected
    assert captured.out == ""


@pytest.mark.parametrize(
    "command", [["serve", "--bind", "127.0.0.1:{port}"], ["demo", "--port", "{port}"]]
)
def test_a_port_in_use_is_one_line(
    bare: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])

        assert main([part.format(port=port) for part in command]) == 1

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"blanco: 127.0.0.1:{port} is already in use: ")
    assert not (bare / "data" / "redis").exists(), "no Redis started for a server that cannot"


def test_an_unknown_log_level_is_one_line(
    bare: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BLANCO_LOG_LEVEL", "LOUD")

    assert main(["config"]) == 2

    assert one_line(capsys.readouterr().err) == "blanco: BLANCO_LOG_LEVEL: unknown log level 'LOUD'"
