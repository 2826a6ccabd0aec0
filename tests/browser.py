"""Headless Chromium (Debian's ``chromium``) for the tests that need a real browser, and the
app on a real local HTTP server for it to fetch."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from server.services import EXTENSION, Services

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def chromium() -> str:
    """Chromium's binary: ``BLANCO_CHROMIUM``, else one on PATH (``make test`` installs it)."""
    found = os.environ.get("BLANCO_CHROMIUM") or next(
        (path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None
    )
    if found is None:
        pytest.fail(
            "no Chromium: install Debian's chromium (make test does) or set BLANCO_CHROMIUM"
        )
    return found


def run_chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Chromium headless on ``url`` with a fresh profile (``args``: what to do there)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        timeout=60,
        check=True,
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_wsgi(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` on a real local HTTP server (a thread); its base URL."""
    port = port or free_port()
    server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def serve_app(make_app: Callable[..., Flask], **overrides: Any) -> Iterator[tuple[str, Services]]:
    """A Blanco app (public at its own address) on a real local HTTP server."""
    port = free_port()
    app = make_app(public_url=f"http://127.0.0.1:{port}", **overrides)
    with serve_wsgi(app, port) as base:
        yield base, app.extensions[EXTENSION]
