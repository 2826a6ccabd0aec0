"""Connections spread over gunicorn's workers: on a TCP bind each worker listens on its own
``SO_REUSEPORT`` socket, so the kernel shares connections out between them, and a few
long-lived keep-alive connections (a proxy's pool) do not all land on the worker that woke
first while the other idles."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from server.config import load_settings
from server.serving import gunicorn_options, reuses_port
from tests.served import LAUNCHERS, Served, free_port, live_workers, server_env, serving

CONNECTIONS = 32
AT_LEAST = 4
"""Connections each worker must hold of ``CONNECTIONS``: the kernel's hash leaves one worker
fewer with a probability of about one in a million; one shared socket usually leaves one
worker with none."""
ESTABLISHED = "01"
LISTENING = "0A"


@pytest.fixture(params=list(LAUNCHERS))
def server(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Served]:
    """Blanco with two workers on a TCP port, as each launcher runs it."""
    env = server_env(redis_url, free_port(), tmp_path / "data", workers=2)
    with serving(LAUNCHERS[request.param], env, tmp_path / "server.log") as served:
        yield served


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def tcp_inodes(port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets in ``state`` whose local end is on ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == state and int(fields[1].rpartition(":")[2], 16) == port:
            found.add(fields[9])
    return found


def wait_for_listeners(server: Served, count: int) -> None:
    """Wait until ``count`` sockets listen on the server's port (gunicorn starts its workers
    one after the other, and the first one answers before the last has started)."""
    deadline = time.monotonic() + 30
    while len(tcp_inodes(server.port, LISTENING)) < count:
        assert time.monotonic() < deadline, "the workers did not all listen"
        time.sleep(0.05)  # polling the workers' start, not waiting for time to pass


def test_each_worker_listens_on_a_socket_of_its_own(server: Served) -> None:
    wait_for_listeners(server, 2)
    listening = tcp_inodes(server.port, LISTENING)
    owned = {pid: socket_inodes(pid) & listening for pid in live_workers(server)}
    assert len(owned) == 2
    assert [len(sockets) for sockets in owned.values()] == [1, 1], owned
    assert set.union(*owned.values()) == listening
    assert not socket_inodes(server.process.pid) & listening, "the master holds no listener"


def test_keep_alive_connections_spread_over_both_workers(server: Served) -> None:
    wait_for_listeners(server, 2)
    with ExitStack() as stack:
        for _ in range(CONNECTIONS):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            stack.callback(connection.close)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "keep-alive").lower() != "close"
        accepted = tcp_inodes(server.port, ESTABLISHED)
        held = {pid: len(socket_inodes(pid) & accepted) for pid in live_workers(server)}
    assert len(held) == 2
    assert sum(held.values()) == CONNECTIONS, held
    assert min(held.values()) >= AT_LEAST, f"connections per worker: {held}"


@pytest.mark.parametrize(
    ("bind", "own_sockets"),
    [
        ("127.0.0.1:8000", True),
        ("0.0.0.0:80", True),
        ("[::1]:8000", True),
        ("unix:/run/blanco.sock", False),
        ("fd://3", False),
    ],
)
def test_only_tcp_binds_give_each_worker_its_own_socket(bind: str, own_sockets: bool) -> None:
    assert reuses_port(bind) is own_sockets
    settings = load_settings({"signing_keys": "s" * 40, "bind": bind}, environ={})
    assert gunicorn_options(settings)["reuse_port"] is own_sockets
