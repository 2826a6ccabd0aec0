"""The ``blanco`` command end to end: the demo serves real images on an embedded Redis."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.cli.main import main
from server.config import load_settings
from server.serving import gunicorn_options
from tests.factories import corner_color, decode_image, landing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_demo_prints_urls_and_serves_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n == "REDIS_URL" or n.startswith("BLANCO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BLANCO_DATA_DIR", str(tmp_path / "data"))
    env = dict(os.environ)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().split() for _ in range(6)]
        assert [line[0] for line in lines] == ["anna", "bram", "chloe", "daan", "sara", "eva"]
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "demo server did not come up"
                time.sleep(0.2)
        colors = set()
        paired: set[tuple[tuple[int, ...], str]] = set()  # (image colour, click target)
        for _, image_url, click_url in lines:
            with urllib.request.urlopen(image_url, timeout=5) as response:  # noqa: S310
                assert response.status == 200
                body = response.read()
            assert decode_image(body).size == (600, 200)
            colors.add(corner_color(body))
            opener = urllib.request.build_opener(NoRedirect)
            with pytest.raises(urllib.error.HTTPError) as redirect:
                opener.open(click_url, timeout=5)
            assert redirect.value.code == 302
            assert landing(redirect.value).startswith("https://example.com/")
            paired.add((corner_color(body), landing(redirect.value)))
            redirect.value.close()
        assert len(colors) == 4  # three variants and the fallback
        # each click goes where its image showed: one target per banner, a banner per target
        assert len(paired) == len(colors) == len({target for _, target in paired})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/demo", timeout=5) as response:
            page = response.read().decode()
        slot_images = re.findall(r'src="([^"]*/s/daily/\d\.png[^"]*)"', page)
        assert len(slot_images) == 15  # three slots for each of the five recipients with consent
        assert page.count("Not in today's audience") == 1  # Eva: no email consent
        slot = html.unescape(slot_images[0])
        with urllib.request.urlopen(slot, timeout=5) as response:  # noqa: S310
            assert decode_image(response.read()).size == (1200, 400)  # dpr=2
        audience = commands_against_the_demo(port, capsys)
        assert {r["recipient_id"]: r["bl_token"] for r in audience} == {
            rid: url.split("?r=")[1] for rid, url, _ in lines if rid != "eva"
        }  # the demo's own key signed them: they are the tokens of the printed URLs
        assert [r["email"] for r in audience] == [
            f"{r['recipient_id']}@example.com" for r in audience
        ]
        assert {r["first_name"] for r in audience} >= {"Chloé"}
        anna = next(row for row in audience if row["recipient_id"] == "anna")
        items = f"/amp/daily/items.json?r={anna['bl_token']}&s={anna['bl_send']}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{items}", headers={"AMP-Email-Sender": "news@example.com"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            assert response.headers["AMP-Email-Allow-Sender"] == "news@example.com"
            assert len(json.load(response)["items"]) == 3
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert "generated a quick-start key" in stderr
    assert (tmp_path / "data" / "quickstart-signing-key").exists()
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists()  # Redis shut down
    assert (
        f"curl -H 'AMP-Email-Sender: news@example.com' 'http://127.0.0.1:{port}{items}'" in stderr
    )
    assert f"source {tmp_path / 'data' / 'demo.env'}" in stderr
    assert not (tmp_path / "data" / "demo.env").exists()  # removed when the demo stopped
    assert re.search(r"\bblk_[0-9a-f]+_\S+", stderr), "an admin API key"
    assert f"http://127.0.0.1:{port}/api/v1/openapi.json" in stderr
    assert f"http://127.0.0.1:{port}/demo" in stderr


def commands_against_the_demo(
    port: int, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, str]]:
    """Run ``blanco embed`` and ``blanco audience`` as the README shows them, with nothing in
    the environment but the data folder: both find the running demo. Returns the audience."""
    capsys.readouterr()
    assert main(["embed", "daily", "hero", "--esp", "mailchimp"]) == 0
    embedded = capsys.readouterr()
    assert embedded.err.startswith("using the running demo's Redis and key")
    assert embedded.out.startswith(f'<a href="http://127.0.0.1:{port}/c/daily/hero?r=*|')
    assert main(["audience", "daily"]) == 0
    exported = capsys.readouterr()
    assert "5 recipients exported" in exported.err
    return list(csv.DictReader(io.StringIO(exported.out)))


def test_serve_refuses_to_start_without_a_signing_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BLANCO_SIGNING_KEYS", raising=False)
    assert main(["serve"]) == 2
    assert "BLANCO_SIGNING_KEYS" in capsys.readouterr().err


def test_config_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert "BLANCO_WORKERS\t2\t" in capsys.readouterr().out


def test_gunicorn_workers_come_from_config() -> None:
    settings = load_settings(
        {"signing_keys": "s" * 40, "workers": 7, "threads": 3, "bind": "0.0.0.0:9"}
    )
    options = gunicorn_options(settings)
    assert (options["workers"], options["threads"], options["bind"]) == (7, 3, "0.0.0.0:9")
    assert options["worker_class"] == "gthread"
