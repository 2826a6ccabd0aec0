"""gunicorn configuration: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Worker count, threads and bind address come from Blanco's settings (``BLANCO_WORKERS``,
``BLANCO_THREADS``, ``BLANCO_BIND``). Logs are Blanco's JSON lines on stderr, gunicorn's own
included (redacted: no client address, request line or URI). Metrics add up every worker's
counts, kept under ``BLANCO_DATA_DIR``/metrics (emptied at start). Without ``REDIS_URL`` the master
starts an embedded Redis under ``BLANCO_DATA_DIR`` before the workers fork and stops it on exit.
"""

from typing import Any

from server.config import load_settings
from server.embedded_redis import EmbeddedRedis
from server.metrics import enable_multiprocess
from server.serving import gunicorn_options

_settings = load_settings()
_embedded: list[EmbeddedRedis] = []

globals().update(gunicorn_options(_settings))


def on_starting(server: Any) -> None:
    """Multiprocess metrics in a clean folder, and the embedded Redis when no REDIS_URL is set."""
    import os

    enable_multiprocess(_settings.data_dir)

    if not os.environ.get("REDIS_URL"):
        embedded = EmbeddedRedis(_settings.data_dir / "redis")
        os.environ["REDIS_URL"] = embedded.start()
        _embedded.append(embedded)


def on_exit(server: Any) -> None:
    """Stop the embedded Redis, if this master started one."""
    for embedded in _embedded:
        embedded.stop()
