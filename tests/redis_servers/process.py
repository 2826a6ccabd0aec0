"""One throwaway redis-server (``RedisProcess``), and what every topology shares: free ports,
polling, and killing at exit whatever is still running."""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.embedded_redis import find_redis_server

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
CONTROL_TIMEOUT_SECONDS = 5.0
"""Socket timeout of the connections the helpers themselves use."""
POLL_SECONDS = 0.02
CLUSTER_BUS_OFFSET = 10000
"""Redis Cluster's bus listens on the node's port plus this."""
START_ATTEMPTS = 5
"""Tries with a fresh port when one picked as free was taken before the server bound it."""

T = TypeVar("T")


class RedisServerError(RuntimeError):
    """A test Redis server did not start, or a topology did not reach the expected state."""


# process bookkeeping

_live: set[subprocess.Popen[bytes]] = set()
_exit_hook_registered = False


def _track(process: subprocess.Popen[bytes]) -> None:
    """Remember a live server, to kill it at exit if nothing stopped it."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(kill_leftovers)
        _exit_hook_registered = True
    _live.add(process)


def kill_leftovers() -> None:
    """Kill every server process started here that is still running."""
    for process in list(_live):
        if process.poll() is None:
            process.kill()
            process.wait()
        _live.discard(process)


def free_port(*, with_bus: bool = False) -> int:
    """A TCP port of 127.0.0.1 nothing listens on (and, ``with_bus``, its cluster bus port)."""
    for _ in range(100):
        port = _unused_port()
        if not with_bus:
            return port
        if port + CLUSTER_BUS_OFFSET < 65536 and _bindable(port + CLUSTER_BUS_OFFSET):
            return port
    raise RedisServerError("no free port pair for a cluster node")


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def wait_until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something other than None (or False); return it.

    Redis errors while polling count as "not yet". Raises RedisServerError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
        except (redis.RedisError, OSError) as exc:
            result, last_error = None, exc
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise RedisServerError(f"timed out after {timeout:.1f} s waiting for {what}{suffix}")
        time.sleep(POLL_SECONDS)


def no_retry() -> Retry:
    """A redis-py retry policy that does not retry: a test sees each failure as it happens."""
    return Retry(NoBackoff(), 0)


# one server


class Topology:
    """Redis processes a test starts and stops, or uses as a context manager."""

    def start(self) -> Self:
        """Start every process and wait until it answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisProcess(Topology):
    """One throwaway redis-server on a free port of 127.0.0.1, in its own folder.

    ``unix_socket`` also listens on ``<folder>/redis.sock``; ``persistence`` turns the AOF on
    (so data survives ``stop()``/``kill()`` and ``restart()``); ``config`` adds directives;
    ``sentinel`` runs it as a Sentinel; ``cluster_bus`` keeps the port's cluster bus port free
    too. Without a ``port``, a port found taken at start is swapped for another; once started,
    ``restart()`` reuses it.
    """

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = None,
        unix_socket: bool = False,
        persistence: bool = False,
        config: Sequence[str] = (),
        sentinel: bool = False,
        cluster_bus: bool = False,
    ) -> None:
        self.folder = folder.resolve()
        self._port_given = port is not None
        self.cluster_bus = cluster_bus
        self.port = port if port is not None else free_port(with_bus=cluster_bus)
        self.socket_path = self.folder / "redis.sock" if unix_socket else None
        self.persistence = persistence
        self.extra_config = tuple(config)
        self.sentinel = sentinel
        self._process: subprocess.Popen[bytes] | None = None
        self._paused_until = 0.0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {HOST}:{self.port} {state}>"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port)."""
        return HOST, self.port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>``."""
        return f"redis://{HOST}:{self.port}"

    @property
    def unix_url(self) -> str:
        """``unix://<folder>/redis.sock`` (only with ``unix_socket``)."""
        if self.socket_path is None:
            raise RedisServerError("this server has no Unix socket")
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.folder / "redis.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def client(self, **options: Any) -> redis.Redis:
        """A new client of this server (decoded replies unless told otherwise)."""
        options.setdefault("decode_responses", True)
        options.setdefault("socket_timeout", CONTROL_TIMEOUT_SECONDS)
        return redis.Redis(host=HOST, port=self.port, **options)

    def _config_lines(self) -> list[str]:
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            f"dir {self.folder}",
            f"logfile {self.log_path}",
            "daemonize no",
        ]
        if not self.sentinel:
            lines += ['save ""', f"appendonly {'yes' if self.persistence else 'no'}"]
            if self.socket_path is not None:
                lines += [f"unixsocket {self.socket_path}", "unixsocketperm 700"]
        return [*lines, *self.extra_config, ""]

    def start(self) -> RedisProcess:
        """Start the server and wait until it answers PING (a fresh port if it was taken)."""
        if self.running:
            return self
        for _ in range(START_ATTEMPTS):
            if self._launch():
                return self
            if self._port_given or "in use" not in self._log_tail():
                break
            self.port = free_port(with_bus=self.cluster_bus)
        raise RedisServerError(
            f"redis-server on port {self.port} did not start: {self._log_tail()}"
        )

    def _launch(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.socket_path is not None and len(str(self.socket_path)) > 100:
            raise RedisServerError(f"folder path too long for a Unix socket: {self.folder}")
        config = self.folder / "redis.conf"
        config.write_text("\n".join(self._config_lines()))
        command = [find_redis_server(), str(config)]
        if self.sentinel:
            command.append("--sentinel")
        process = subprocess.Popen(  # the packaged binary and our own config
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _track(process)
        self._process = process
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5, retry=no_retry())
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    _live.discard(process)
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
                    if probe.ping():
                        return True
                time.sleep(POLL_SECONDS)
        finally:
            probe.close()
        self.kill()
        raise RedisServerError(f"redis-server on port {self.port} did not answer in time")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        """Shut the server down with ``SHUTDOWN NOSAVE`` (SIGTERM while it is paused, as a
        paused server holds that command too); kill it if that does not end it."""
        process = self._process
        if process is None or process.poll() is not None:
            self._forget()
            return
        if time.monotonic() < self._paused_until:
            process.terminate()
        else:
            client = self.client(socket_timeout=1, retry=no_retry())
            try:
                client.execute_command("SHUTDOWN", "NOSAVE")
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
                process.terminate()  # the reply never comes when it works; SIGTERM is harmless
            finally:
                client.close()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._forget()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._forget()

    def _forget(self) -> None:
        if self._process is not None:
            _live.discard(self._process)
        self._process = None

    def restart(self) -> RedisProcess:
        """Stop the server if it runs, then start it again on the same port."""
        self.stop()
        self._port_given = True  # clients know this port: never move to another
        return self.start()

    def pause(self, seconds: float) -> None:
        """Hold every client's commands for ``seconds`` (``CLIENT PAUSE``), as a stall would."""
        client = self.client()
        try:
            client.execute_command("CLIENT", "PAUSE", max(1, round(seconds * 1000)))
        finally:
            client.close()
        self._paused_until = time.monotonic() + seconds


def start_all(servers: Sequence[RedisProcess]) -> None:
    """Start servers one after the other; if one fails, kill them all and raise."""
    try:
        for server in servers:
            server.start()
    except BaseException:
        for server in servers:
            server.kill()
        raise
