"""The app gunicorn serves in HTTP mode: Blanco configured from the environment, plus the
constant-bytes route. Run as ``gunicorn 'benchmarks.http_app:create_bench_app()'``.

With ``BLANCO_BENCH_RECORDING_SWITCH=1`` in the environment the app also takes a benchmark-only
query parameter, ``bench-record=0``, that serves the open without recording it (see
``python -m benchmarks.recording``). Blanco's own routes and settings know nothing of it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from flask import Flask

from benchmarks.constant_route import register_constant_route
from models.email_clients import ClientInfo
from server import create_app
from server.open.answers import ImageAnswer, ImageOptions
from server.open.core import OpenCore
from server.open.routes import CORE, OpenRoutes
from server.tokens import Identity

RECORDING_SWITCH_ENV = "BLANCO_BENCH_RECORDING_SWITCH"
RECORD_PARAM = "bench-record"
DEFAULT_OPTIONS = ImageOptions()
_SKIP_RECORDING: ContextVar[bool] = ContextVar("bench_skip_recording", default=False)


class RecordingSwitch:
    """WSGI middleware (outermost): marks a request whose query string has ``bench-record=0``,
    for :class:`SwitchableRecording`. Blanco's open routes answer as plain WSGI, without a Flask
    request context, so the mark travels in a context variable."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        skip = f"{RECORD_PARAM}=0" in str(environ.get("QUERY_STRING", "")).split("&")
        token = _SKIP_RECORDING.set(skip)
        try:
            return self.app(environ, start_response)
        finally:
            _SKIP_RECORDING.reset(token)


class SwitchableRecording(OpenCore):
    """Blanco's open core, except that a request with ``bench-record=0`` in its query string
    is served with ``block_image(record=False)``: the same work without the write of the
    decision, the event and the counters."""

    def block_image(
        self,
        campaign_id: str,
        block_id: str,
        who: Identity,
        client: ClientInfo,
        now: dt.datetime,
        *,
        options: ImageOptions = DEFAULT_OPTIONS,
        send_id: str | None = None,
        record: bool = True,
    ) -> ImageAnswer:
        """As :meth:`OpenCore.block_image`, not recording when the request says so."""
        if record and _SKIP_RECORDING.get():
            record = False
        return super().block_image(
            campaign_id,
            block_id,
            who,
            client,
            now,
            options=options,
            send_id=send_id,
            record=record,
        )


def set_open_core(app: Flask, core: OpenCore) -> None:
    """Serve ``app``'s opens with ``core``: the app's extension, and the core its open-time
    WSGI middleware (``OpenRoutes``, which holds its own reference) answers with."""
    app.extensions[CORE] = core
    layer: object = app.wsgi_app
    while layer is not None and not isinstance(layer, OpenRoutes):
        layer = getattr(layer, "app", None)
    if layer is None:
        raise RuntimeError("the app has no OpenRoutes middleware to switch")
    layer.core = core


def install_recording_switch(app: Flask) -> OpenCore:
    """Serve ``app``'s opens through a :class:`SwitchableRecording` on the same services and
    metrics, behind a :class:`RecordingSwitch`; return the core it replaces (give it to
    ``remove_recording_switch`` to undo)."""
    original: OpenCore = app.extensions[CORE]
    set_open_core(
        app, SwitchableRecording(original.services, original.metrics, original.mpp_ranges)
    )
    app.wsgi_app = RecordingSwitch(app.wsgi_app)  # type: ignore[method-assign]
    return original


def remove_recording_switch(app: Flask, original: OpenCore) -> None:
    """Undo ``install_recording_switch``: the ``original`` core, without the middleware."""
    if isinstance(app.wsgi_app, RecordingSwitch):
        app.wsgi_app = app.wsgi_app.app  # type: ignore[method-assign]
    set_open_core(app, original)


def create_bench_app() -> Flask:
    """Blanco's app with the benchmark's baseline route (and the recording switch when
    ``BLANCO_BENCH_RECORDING_SWITCH=1``)."""
    app = create_app()
    register_constant_route(app)
    if os.environ.get(RECORDING_SWITCH_ENV) == "1":
        install_recording_switch(app)
    return app
