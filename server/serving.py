"""Running Blanco under gunicorn, with an embedded Redis when ``REDIS_URL`` is not set."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from server.config import Settings
from server.embedded_redis import EmbeddedRedis
from server.logs import ServerLogRedaction, configure_logging
from server.metrics import EXTENSION as METRICS
from server.metrics import mark_worker_dead


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings derived from Blanco's: gthread workers for the CPU-bound render path."""
    return {
        "bind": settings.bind,
        "workers": settings.workers,
        "threads": settings.threads,
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "reuse_port": reuses_port(settings.bind),
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "logger_class": JsonServerLogger,
        "child_exit": _child_exit,
        "when_ready": _when_ready,
        "worker_exit": _worker_exit,
        # gunicorn 27's control socket lives in $HOME, shared by every server on the host;
        # Blanco does not use it.
        "control_socket_disable": True,
    }


def reuses_port(bind: str) -> bool:
    """Whether each worker listens on its own ``SO_REUSEPORT`` socket: for a TCP bind, so that
    the kernel spreads connections over the workers. With one shared socket, whichever worker
    wakes first accepts, and a few keep-alive connections (a proxy's pool, or a load test's)
    can all end up on one worker while the other idles. Not for ``unix:`` or ``fd://`` binds,
    which one socket serves."""
    return not bind.startswith(("unix:", "fd://"))


class JsonServerLogger(Logger):  # type: ignore[misc]
    """gunicorn's error log as Blanco's JSON lines (``server.logs``), redacted: gunicorn's own
    handlers are removed, its records go to the root logger's JSON handler through
    ``ServerLogRedaction``. Its access log stays off (``accesslog`` None)."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's set-up (levels), then the JSON handler instead of gunicorn's."""
        super().setup(cfg)
        configure_logging(cfg.loglevel)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.propagate = True
        if not any(isinstance(f, ServerLogRedaction) for f in self.error_log.filters):
            self.error_log.addFilter(ServerLogRedaction())
            self.error_log.addFilter(_listening_at_nothing)
        self.access_log.disabled = True


def _listening_at_nothing(record: logging.LogRecord) -> bool:
    """Leave out the master's "Listening at" line when it names no socket (each worker has its
    own: ``_when_ready`` says where they listen)."""
    return not record.getMessage().startswith("Listening at:  (")


def _when_ready(server: Any) -> None:
    """gunicorn hook, in the master once it runs: with a socket per worker the master listens on
    none, so its own "Listening at" line names nothing; say where the workers listen."""
    if server.cfg.reuse_port:
        for bind in server.cfg.bind:
            server.log.info("Listening at: http://%s (a socket per worker)", bind)


def _child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master: drop an exited worker's live gauges (its counters stay in
    the metrics folder and keep adding up: a counter never goes back)."""
    mark_worker_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the exiting worker: write the opens and clicks still queued, and hand
    the last counts to the metrics folder."""
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", {})
    core = extensions.get("blanco.open")
    if core is not None and not core.recorder.flush(timeout=5.0):
        server.log.warning("worker %s exited before all events were recorded", worker.pid)
    metrics = extensions.get(METRICS)
    if metrics is not None:
        metrics.flush()


def bind_in_use(bind: str) -> bool:
    """Whether something already listens on a ``HOST:PORT`` bind address (other forms, such as
    ``unix:PATH``, are left to gunicorn)."""
    host, separator, port = bind.rpartition(":")
    if not separator or not port.isdigit() or host.startswith("unix"):
        return False
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - only probed, as gunicorn would bind it
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    """The configured Redis URL, or an embedded Redis under the data folder for the duration."""
    if settings.redis_url:
        yield settings.redis_url
        return
    with EmbeddedRedis(settings.data_dir / "redis") as embedded:
        os.environ["REDIS_URL"] = embedded.url  # workers and the reloader see the same Redis
        try:
            yield embedded.url
        finally:
            os.environ.pop("REDIS_URL", None)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running an already-built Flask app (workers fork from it)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application
