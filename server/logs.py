"""Structured logs: one JSON object per line, each tagged with the request it belongs to.

``configure_logging(level)`` is called by entry points (CLI, gunicorn config), never at import.
``install_request_ids(app)`` gives every request an id (``X-Request-ID`` in and out) that the log
lines written while handling it carry: a sane incoming id is kept, else a new one is drawn (32 hex
digits from a generator seeded from the operating system once per process and again in each
forked worker: cheap, unique across workers and restarts, and random, so that an id tells nothing
about how many requests a worker answered). It is one WSGI wrapper (``RequestIds``), which a
route answering without Flask can wrap too. ``install_access_log(app)`` optionally writes one
line per request.

What never goes into a log line: query strings (image and click URLs carry signed recipient
tokens in them), raw paths, user agents and client addresses. Requests are named by their URL
rule (``/i/<campaign_id>/<block_id>.png``). Messages should name campaigns and blocks, never
recipients. gunicorn's own access log stays off for the same reason: its format has the query
string. gunicorn's error log goes through the same JSON handler (``server.serving``), its
messages passed through ``ServerLogRedaction``, which drops client addresses, request lines,
URIs and the quoted request bytes gunicorn puts in its parse errors. In tracebacks, pydantic's
``input_value=…`` excerpts (a recipient id, an e-mail address) are replaced by ``[redacted]``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from server.metrics import method_label, route_label

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOGGER = "blanco.access"

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_INCOMING_REQUEST_ID = "HTTP_X_REQUEST_ID"  # the header, in a WSGI environ
REQUEST_ID: ContextVar[str | None] = ContextVar("blanco_request_id", default=None)
"""The id of the request being answered: set by ``RequestIds``, or by a route that answers
without Flask (``server.open.routes``)."""
# Request ids need to be unique, not secret: a Mersenne Twister seeded from os.urandom draws
# 128 bits in a fraction of a microsecond (uuid4 reads os.urandom on every call). Reseeded in a
# forked child, as the random module does for its own generator, so workers never share ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_G_ACCESS_START = "blanco_access_start"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    {
        *logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "request_id",
    }
)


def current_request_id() -> str | None:
    """The id of the request being handled, if any."""
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (or None outside requests) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record; never drops it."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
REDACTED = "[redacted]"
_INPUT_VALUE = re.compile(r"input_value=(?:.*(?=, input_type=)|.*)")
_CLIENT_ADDRESS = re.compile(r" from ip=.*?(?=: |$)")
_QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'" + "|" + r'b?"(?:[^"\\]|\\.)*"')
_QUERY = re.compile(r"\?[^\s'\"]+")
_REQUEST_TARGET = re.compile(r"^(Error handling request)(?! \(no URI read\)) .*", re.DOTALL)


def redact_traceback(text: str) -> str:
    """``text`` with every pydantic ``input_value=…`` excerpt (up to its ``input_type``, else
    to the end of the line) replaced by ``[redacted]``."""
    return "\n".join(
        _INPUT_VALUE.sub(f"input_value={REDACTED}", line) for line in text.splitlines()
    )


def redact_server_message(text: str) -> str:
    """A gunicorn message without the client's address, request line, URI or quoted request
    bytes (``Invalid request from ip=203.0.113.7: Invalid HTTP request line: 'GET /i/…?r=…'``
    becomes ``Invalid request: Invalid HTTP request line: [redacted]``)."""
    text = _REQUEST_TARGET.sub(r"\1", text)
    text = _CLIENT_ADDRESS.sub("", text)
    text = _QUOTED.sub(REDACTED, text)
    return _QUERY.sub(f"?{REDACTED}", text)


class ServerLogRedaction(logging.Filter):
    """Rewrites each record of gunicorn's error log with ``redact_server_message``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message in place; never drops the record."""
        record.msg = redact_server_message(record.getMessage())
        record.args = ()
        return True


class JsonFormatter(logging.Formatter):
    """time (ISO 8601, UTC), level, logger, message, request_id, extras, exception: one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = redact_traceback(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def formatException(self, ei: ExcInfo) -> str:
        """The traceback, without pydantic's excerpts of the input."""
        return redact_traceback(super().formatException(ei))


class JsonLogHandler(logging.StreamHandler[IO[str]]):
    """The root handler ``configure_logging`` installs (found again by its type)."""


def configure_logging(level: str, stream: IO[str] | None = None) -> logging.Handler:
    """Log JSON lines at ``level`` to ``stream`` (stderr) from the root logger; idempotent.

    Other handlers already on the root logger are left alone. Raises ValueError on an unknown
    level name.
    """
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, JsonLogHandler)), None)
    if handler is None:
        handler = JsonLogHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    elif stream is not None:
        handler.stream = stream  # no flush: the previous stream may already be closed
    root.setLevel(number)
    return handler


def sane_request_id(candidate: str | None) -> str | None:
    """``candidate`` if it is a safe token (≤ 64 of ``[A-Za-z0-9._-]``), else None."""
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    return None


def new_request_id() -> str:
    """A new request id: 32 random hex digits."""
    return format(_ids.getrandbits(128), "032x")


class RequestIds:
    """WSGI wrapper that gives each request an id (a sane incoming ``X-Request-ID``, else a new
    one), tags the log lines written while the app answers with it, and echoes it back."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer through the app with the request's id in the logs and the answer."""
        request_id = sane_request_id(environ.get(_INCOMING_REQUEST_ID)) or new_request_id()

        def answer(
            line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(line, headers, exc_info)

        token = REQUEST_ID.set(request_id)
        try:
            return self.app(environ, answer)
        finally:
            REQUEST_ID.reset(token)


def install_request_ids(app: Flask) -> None:
    """Give each request of ``app`` an id, in its log lines and its answer (``RequestIds``)."""
    app.wsgi_app = RequestIds(app.wsgi_app)  # type: ignore[method-assign]


ACCESS_LOG_EXTENSION = "blanco.access_log"
"""Set in ``app.extensions`` when the app writes access lines (routes served without Flask ask)."""


def access_log_enabled(app: Flask) -> bool:
    """Whether ``app`` writes one access line per request."""
    return bool(app.extensions.get(ACCESS_LOG_EXTENSION))


def write_access_line(method: str, route: str, status: int, seconds: float | None) -> None:
    """One INFO line on ``blanco.access``: method, URL rule, status, duration."""
    log = logging.getLogger(ACCESS_LOGGER)
    if not log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {"method": method, "route": route, "status": status}
    if seconds is not None:
        fields["duration_ms"] = round(seconds * 1000, 3)
    log.info("%s %s %s", method, route, status, extra=fields)


def install_access_log(app: Flask) -> None:
    """Log one INFO line per request on ``blanco.access``: method, URL rule, status, duration.

    Never the path, query string, user agent or client address.
    """
    app.extensions[ACCESS_LOG_EXTENSION] = True

    def start() -> None:
        setattr(g, _G_ACCESS_START, time.perf_counter())

    def write(response: Response) -> Response:
        started: float | None = g.get(_G_ACCESS_START)
        seconds = None if started is None else time.perf_counter() - started
        write_access_line(
            method_label(request.method), route_label(request), response.status_code, seconds
        )
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(write)
