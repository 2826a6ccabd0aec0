"""A Blanco server in a child process (gunicorn, ``blanco serve``), for tests over real HTTP."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SIGNING_KEY

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {
    "gunicorn.conf.py": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    "blanco serve": [sys.executable, "-m", "server.cli", "serve", "--workers", "2"],
}
"""The two ways of running Blanco under gunicorn (both take the bind, workers and threads from
``BLANCO_*`` variables; ``blanco serve``'s ``--workers`` wins over its variable)."""


def server_env(
    redis_url: str, port: int, data_dir: Path, *, workers: int, threads: int = 2
) -> dict[str, str]:
    """This process's environment without its ``BLANCO_*`` settings (and a multiprocess metrics
    folder), plus what a test server needs: the test Redis, the tests' signing key, 127.0.0.1 on
    ``port``, ``workers`` × ``threads``, and ``data_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BLANCO_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        REDIS_URL=redis_url,
        BLANCO_SIGNING_KEYS=SIGNING_KEY,
        BLANCO_BIND=f"127.0.0.1:{port}",
        BLANCO_WORKERS=str(workers),
        BLANCO_THREADS=str(threads),
        BLANCO_DATA_DIR=str(data_dir),
    )
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole."""

    status: int
    body: bytes


def get(port: int, path: str, timeout: float = 10) -> Answer:
    """GET ``path`` on a connection of its own (closed after the answer), so that successive
    requests may reach different workers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return Answer(response.status, response.read())
    finally:
        connection.close()


@dataclass
class Served:
    """A server child process: its port, its process and the file its output goes to."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def wait_until_ready(self, timeout: float = 30) -> None:
        """Poll /readyz until it answers 200 (fail if the server exits or takes too long)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.log_path.read_text()}"
            try:
                if get(self.port, "/readyz", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)  # polling a child process's start, not waiting for time to pass
        pytest.fail("the server did not become ready")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> str:
        """Stop the server (SIGTERM: gracefully; SIGQUIT: at once) and return everything it
        logged."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(timeout=30)
        return self.log_path.read_text()


@contextmanager
def serving(
    command: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[Served]:
    """Run ``command`` (which listens on ``BLANCO_BIND`` from ``env``) from the checkout's root
    until the block ends, then stop it with ``stop``; it is ready (/readyz) when the block
    starts."""
    port = int(env["BLANCO_BIND"].rpartition(":")[2])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(port, log_path, process)
    try:
        served.wait_until_ready()
        yield served
    finally:
        served.stop(stop)


def live_workers(server: Served) -> set[int]:
    """The pids of the gunicorn master's worker processes, as the kernel lists them."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}
