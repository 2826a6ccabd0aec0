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
from server.open_time import ImageAnswer, ImageOptions, OpenTime

RECORDING_SWITCH_ENV = "BLANCO_BENCH_RECORDING_SWITCH"
RECORD_PARAM = "bench-record"
OPEN_TIME_EXTENSION = "blanco.open_time"  # where server/app.py keeps the app's OpenTime
DEFAULT_OPTIONS = ImageOptions()


class SwitchableRecording(OpenTime):
    """Blanco's open-time service, except that a request with ``bench-record=0`` in its query
    string is served with ``image_for(record=False)``: the same work without the pipelined
    write of the decision, the event and the counters."""

    def image_for(
        self,
        campaign_id: str,
        block_id: str,
        recipient_id: str | None,
        client: ClientInfo,
        now: dt.datetime,
        *,
        options: ImageOptions = DEFAULT_OPTIONS,
        record: bool = True,
        send_id: str | None = None,
        signed: bool = True,
    ) -> ImageAnswer:
        """As :meth:`OpenTime.image_for`, not recording when the request says so."""
        if record and has_request_context() and request.args.get(RECORD_PARAM) == "0":
            record = False
        return super().image_for(
            campaign_id,
            block_id,
            recipient_id,
            client,
            now,
            options=options,
            record=record,
            send_id=send_id,
            signed=signed,
        )


def install_recording_switch(app: Flask) -> OpenTime:
    """Serve ``app``'s opens through a :class:`SwitchableRecording` on the same services and
    metrics; return the service it replaces (put it back to undo)."""
    original: OpenTime = app.extensions[OPEN_TIME_EXTENSION]
    app.extensions[OPEN_TIME_EXTENSION] = SwitchableRecording(
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
