"""The running demo's settings, in ``<data folder>/demo.env``.

``blanco demo`` writes the file when it starts and removes it when it stops: ``REDIS_URL``, its
quick-start ``BLANCO_SIGNING_KEYS`` (only when it generated one), ``BLANCO_PUBLIC_URL``,
``BLANCO_DATA_DIR`` and ``BLANCO_AMP_ALLOWED_SENDERS``, one ``export NAME=value`` a line, so a
shell can ``source`` it. The demo holds an exclusive ``flock`` on the file for as long as it
runs, so ``running_demo`` tells a live demo from a file left behind by one that crashed (the
lock goes with the process). The other ``blanco`` commands read it through ``running_demo``
when neither ``REDIS_URL`` nor ``BLANCO_SIGNING_KEYS`` is set (see ``server.cli.context``).
"""

from __future__ import annotations

import fcntl
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

DEMO_ENV_FILE = "demo.env"


def demo_env_path(data_dir: Path) -> Path:
    """Where a demo on ``data_dir`` writes its settings."""
    return data_dir / DEMO_ENV_FILE


class DemoSession:
    """``demo.env`` written and locked for the ``with`` block; removed at its end."""

    def __init__(self, data_dir: Path, values: Mapping[str, str]) -> None:
        self.path = demo_env_path(data_dir.resolve())
        self.values = dict(values)
        self._file: IO[str] | None = None

    def __enter__(self) -> DemoSession:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        draft = self.path.with_name(f".{DEMO_ENV_FILE}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "w", encoding="utf-8")
        fcntl.flock(self._file, fcntl.LOCK_EX)  # before it is visible under its name
        self._file.write("# Written by `blanco demo` while it runs; removed when it stops.\n")
        self._file.writelines(f"export {k}={shlex.quote(v)}\n" for k, v in self.values.items())
        self._file.flush()
        os.replace(draft, self.path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is None:
            return
        self.path.unlink(missing_ok=True)
        self._file.close()  # releases the lock
        self._file = None


def running_demo(data_dir: Path) -> dict[str, str] | None:
    """The settings a demo running on ``data_dir`` wrote, or None when no demo runs there (no
    file, or a file no live process holds locked)."""
    try:
        demo_file = demo_env_path(data_dir).open(encoding="utf-8")
    except OSError:
        return None
    with demo_file:
        try:
            fcntl.flock(demo_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return parse_env(demo_file.read())
        return None  # nobody holds it: left behind by a demo that did not stop cleanly


def parse_env(text: str) -> dict[str, str]:
    """``export NAME=value`` lines (values shell-quoted) as a mapping; comments and blanks
    skipped."""
    values = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        if words:
            name, _, value = words[0].partition("=")
            values[name] = value
    return values
