"""gunicorn's own log lines: JSON through Blanco's handler, with no client address, token or
recipient data, from a real gunicorn run with the repository's ``gunicorn.conf.py``."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import BaseModel, ValidationError

from models.storage import keys
from server.logs import JsonFormatter, redact_server_message
from server.services import Services
from tests.conftest import SIGNING_KEY

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ADDRESS = "127.0.0.77"  # a loopback address other than the one gunicorn listens on
TOKEN = "anna.SECRET-TOKEN-4f9c2e"
RECIPIENT = "chloe@example.com"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll /readyz until it answers 200 (fail if gunicorn exits or takes too long)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited at start"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    pytest.fail("gunicorn did not become ready")


@dataclass
class Served:
    """A gunicorn child process: its port and the file its output goes to."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> str:
        """Stop gunicorn (SIGTERM) and return everything it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.log_path.read_text()


@pytest.fixture
def gunicorn(redis_url: str, tmp_path: Path) -> Iterator[Served]:
    """gunicorn (one worker) with the repository's gunicorn.conf.py on the test Redis."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLANCO_")}
    env.update(
        REDIS_URL=redis_url,
        BLANCO_SIGNING_KEYS=SIGNING_KEY,
        BLANCO_BIND=f"127.0.0.1:{port}",
        BLANCO_WORKERS="1",
        BLANCO_THREADS="2",
        BLANCO_DATA_DIR=str(tmp_path / "data"),
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(port, log_path, process)
    try:
        wait_until_ready(port, process)
        yield served
    finally:
        served.stop()


def send_raw(port: int, request: bytes) -> bytes:
    """Send ``request`` from ``CLIENT_ADDRESS`` and read the whole answer."""
    with socket.socket() as sock:
        sock.bind((CLIENT_ADDRESS, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_gunicorn_logs_json_without_address_token_or_input_values(
    gunicorn: Served, services: Services, redis_client: redis.Redis
) -> None:
    port = gunicorn.port
    _, admin_key = services.api_keys.create("tests", ["admin"])
    broken = {"id": "daily", "name": "Daily", "status": RECIPIENT}
    redis_client.set(keys.campaign("daily"), json.dumps(broken))

    malformed = f"GET /i/daily/hero.png?r={TOKEN}\r\nHost: x\r\n\r\n"  # no HTTP version
    assert send_raw(port, malformed.encode()).startswith(b"HTTP/1.1 400")
    admin = (
        f"GET /api/v1/campaigns/daily?r={TOKEN} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {admin_key}\r\nConnection: close\r\n\r\n"
    )
    assert send_raw(port, admin.encode()).startswith(b"HTTP/1.1 500")

    text = gunicorn.stop()
    entries = [json.loads(line) for line in text.splitlines()]
    messages = [entry["message"] for entry in entries]
    assert "Invalid request: Invalid HTTP request line: [redacted]" in messages
    assert any(m.startswith("Listening at: http://127.0.0.1:") for m in messages)
    assert not [m for m in messages if m.startswith("Listening at:  (")], "names no socket"
    [failure] = [entry for entry in entries if "exception" in entry]
    assert "ValidationError" in failure["exception"]
    assert "input_value=[redacted]" in failure["exception"]
    for private in (CLIENT_ADDRESS, TOKEN, "SECRET", RECIPIENT, "hero.png", admin_key):
        assert private not in text, private


def test_pydantic_input_values_leave_tracebacks() -> None:
    class Campaign(BaseModel):
        status: int

    try:
        Campaign.model_validate({"status": f"{RECIPIENT}, input_type=str] {TOKEN}"})
    except ValidationError:
        record = logging.LogRecord("blanco", logging.ERROR, "", 0, "failed", None, sys.exc_info())

    entry: dict[str, Any] = json.loads(JsonFormatter().format(record))

    assert "input_value=[redacted], input_type=str]" in entry["exception"]
    assert RECIPIENT not in entry["exception"]
    assert TOKEN not in entry["exception"]


@pytest.mark.parametrize(
    ("message", "redacted"),
    [
        (
            f"Invalid request from ip=203.0.113.7: Invalid HTTP request line: 'GET /i?r={TOKEN}'",
            "Invalid request: Invalid HTTP request line: [redacted]",
        ),
        (
            "Invalid request from ip=2001:db8::7: Invalid HTTP Header: \"X-Id: it's me\"",
            "Invalid request: Invalid HTTP Header: [redacted]",
        ),
        (f"Error handling request GET /api/v1/recipients/{RECIPIENT}", "Error handling request"),
        ("Error handling request (no URI read)", "Error handling request (no URI read)"),
        (f"Closing connection. No more data after: b'GET /c?r={TOKEN}'", "Closing connection. "
         "No more data after: [redacted]"),
        (f"Request Line is too large: /i/d/h.png?r={TOKEN}", "Request Line is too large: "
         "/i/d/h.png?[redacted]"),
        ("Listening at: http://127.0.0.1:8000 (42)", "Listening at: http://127.0.0.1:8000 (42)"),
        ("Worker (pid:7) was sent SIGKILL! Perhaps out of memory?", "Worker (pid:7) was sent "
         "SIGKILL! Perhaps out of memory?"),
    ],
)  # fmt: skip
def test_server_messages_lose_addresses_request_lines_and_queries(
    message: str, redacted: str
) -> None:
    assert redact_server_message(message) == redacted
