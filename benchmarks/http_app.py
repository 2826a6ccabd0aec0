"""The app gunicorn serves in HTTP mode: Blanco configured from the environment, plus the
constant-bytes route. Run as ``gunicorn 'benchmarks.http_app:create_bench_app()'``.

With ``BLANCO_BENCH_RECORDING_SWITCH=1`` in the environment the app also takes a benchmark-only
query parameter, ``bench-record=0``, that serves the open without recording it (see
``python -m benchmarks.recording``). Blanco's own routes and settings know nothing of it.
"""

from __future__ import annotations

import datetime as dt
import os

from flask import Flask, has_request_context, request

from benchmarks.constant_route import register_constant_route
from models.email_clients import ClientInfo
from server import create_app
from server.open.answers import ImageAnswer, ImageOptions
from server.open.core import OpenCore
from server.open.routes import CORE
from server.tokens import Identity

RECORDING_SWITCH_ENV = "BLANCO_BENCH_RECORDING_SWITCH"
RECORD_PARAM = "bench-record"
DEFAULT_OPTIONS = ImageOptions()


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
        if record and has_request_context() and request.args.get(RECORD_PARAM) == "0":
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


def install_recording_switch(app: Flask) -> OpenCore:
    """Serve ``app``'s opens through a :class:`SwitchableRecording` on the same services and
    metrics; return the core it replaces (put it back to undo)."""
    original: OpenCore = app.extensions[CORE]
    app.extensions[CORE] = SwitchableRecording(
        original.services, original.metrics, original.mpp_ranges
    )
    return original


def create_bench_app() -> Flask:
    """Blanco's app with the benchmark's baseline route (and the recording switch when
    ``BLANCO_BENCH_RECORDING_SWITCH=1``)."""
    app = create_app()
    register_constant_route(app)
    if os.environ.get(RECORDING_SWITCH_ENV) == "1":
        install_recording_switch(app)
    return app
