"""``blanco demo`` on the Redis a URL names: a Redis Cluster (every demo recipient personalised
but the one the demo targets with no variant, every click where its image pointed), and a
Redis with a password (which never appears in what the demo prints or logs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.redis_servers import RedisClusterProcesses, RedisProcess, free_port

pytestmark = pytest.mark.own_redis  # runs on Redis servers of its own


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Lets a test read the 302 itself."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Demo:
    """A running ``blanco demo``: its recipient lines and what it printed on stderr so far."""

    process: subprocess.Popen[str]
    lines: list[list[str]]
    port: int


@pytest.fixture
def run_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Start ``blanco demo`` on a REDIS_URL; stop it (and collect its stderr) afterwards."""
    started: list[Demo] = []

    def start(redis_url: str) -> Demo:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLANCO_")}
        env |= {"REDIS_URL": redis_url, "BLANCO_DATA_DIR": str(tmp_path / "data")}
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "demo", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert process.stdout is not None
        lines = [process.stdout.readline().split() for _ in range(6)]
        demo = Demo(process, lines, port)
        started.append(demo)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    return demo
            except OSError:
                assert time.monotonic() < deadline, "the demo did not come up"
                time.sleep(0.2)

    yield start
    for demo in started:
        demo.process.send_signal(signal.SIGINT)
        demo.process.communicate(timeout=30)


def fetch(url: str) -> tuple[int, dict[str, str]]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, dict(response.headers.items())
    except urllib.error.HTTPError as answer:  # the 302 of a click
        return answer.code, dict(answer.headers.items())


def test_the_demo_on_a_redis_cluster_personalises_every_recipient(
    run_demo: object, redis_cluster: RedisClusterProcesses
) -> None:
    redis_cluster.reset()
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in redis_cluster.ports[:2])
    demo = run_demo(url)  # type: ignore[operator]
    assert [line[0] for line in demo.lines] == ["anna", "bram", "chloe", "daan", "sara", "eva"]
    fallback_url = "https://example.com/deals"
    for recipient, image_url, click_url in demo.lines:
        status, headers = fetch(image_url)
        assert status == 200
        clicked, redirect = fetch(click_url)
        assert clicked == 302
        if recipient == "eva":  # no variant fits her
            assert headers["X-Blanco-Fallback"] == "no variant matched"
            assert redirect["Location"] == fallback_url
        else:
            assert "X-Blanco-Fallback" not in headers, recipient
            assert redirect["Location"] != fallback_url
    redis_cluster.reset()


def test_the_password_in_redis_url_is_never_printed(run_demo: object, tmp_path: Path) -> None:
    secret = "s3cret-Redis-pass-9913"
    with RedisProcess(tmp_path / "redis") as own:
        own.client().config_set("requirepass", secret)
        host, port = own.address
        demo = run_demo(f"redis://:{secret}@{host}:{port}/0")  # type: ignore[operator]
        for _, image_url, _ in demo.lines:
            assert fetch(image_url)[0] == 200
        demo.process.send_signal(signal.SIGINT)
        out, err = demo.process.communicate(timeout=30)
    printed = " ".join(" ".join(line) for line in demo.lines) + out + err
    assert "Redis: redis://:***@" in err
    assert secret not in printed
