"""This process's id without a system call: read once at import and again in every forked
child (the open path checks it per request, to notice a gunicorn worker's fork)."""

from __future__ import annotations

import os

_pid = os.getpid()


def current_pid() -> int:
    """The id of the running process."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)
