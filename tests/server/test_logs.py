"""JSON log lines, request ids, and no recipient data in logs."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.logs import (
    REQUEST_ID_HEADER,
    JsonLogHandler,
    RequestIds,
    configure_logging,
    current_request_id,
    install_access_log,
    install_request_ids,
    new_request_id,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logging at INFO into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, parsed as JSON (fails if one is not)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def logged_app(app: Flask) -> Flask:
    install_request_ids(app)
    install_access_log(app)
    return app


def test_a_line_is_one_json_object_with_the_basic_fields(log_stream: io.StringIO) -> None:
    logging.getLogger("blanco.test").warning("two\nlines of %s", "text")

    [entry] = lines(log_stream)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "blanco.test"
    assert entry["message"] == "two\nlines of text"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert "request_id" not in entry
    assert "exception" not in entry


def test_exceptions_and_extra_fields_are_kept(log_stream: io.StringIO) -> None:
    log = logging.getLogger("blanco.test")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("render failed for %s", "daily/hero", extra={"block_type": "banner"})

    [entry] = lines(log_stream)
    assert entry["message"] == "render failed for daily/hero"
    assert entry["block_type"] == "banner"
    assert entry["exception"].startswith("Traceback")
    assert "ZeroDivisionError" in entry["exception"]


def test_records_below_the_level_are_dropped(log_stream: io.StringIO) -> None:
    logging.getLogger("blanco.test").debug("noise")

    assert lines(log_stream) == []


def test_configure_logging_is_idempotent(log_stream: io.StringIO) -> None:
    root = logging.getLogger()

    again = configure_logging("debug")

    assert [h for h in root.handlers if isinstance(h, JsonLogHandler)] == [again]
    assert root.level == logging.DEBUG
    logging.getLogger("blanco.test").debug("now visible")
    assert [entry["message"] for entry in lines(log_stream)] == ["now visible"]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")


def test_request_lines_carry_the_request_id_and_no_recipient_data(
    logged_app: Flask, log_stream: io.StringIO
) -> None:
    client = logged_app.test_client()

    response = client.get(
        "/i/x/y.png?r=secret-token&dpr=2",
        headers={REQUEST_ID_HEADER: "lb-7f3a.1", "User-Agent": "Mozilla/5.0 (secret-agent)"},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )

    assert response.status_code == 200
    entries = lines(log_stream)
    assert entries
    assert all(entry["request_id"] == "lb-7f3a.1" for entry in entries)
    [access] = [entry for entry in entries if entry["logger"] == "blanco.access"]
    assert access["message"] == "GET /i/<campaign_id>/<block_id>.<extension> 200"
    assert access["method"] == "GET"
    assert access["route"] == "/i/<campaign_id>/<block_id>.<extension>"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    written = log_stream.getvalue()
    for private in ("secret-token", "r=", "dpr", "/i/x/y", "secret-agent", "Mozilla", "203.0.113"):
        assert private not in written


def test_lines_outside_requests_have_no_request_id(
    logged_app: Flask, log_stream: io.StringIO
) -> None:
    with logged_app.app_context():
        logging.getLogger("blanco.test").info("at start-up")

    [entry] = lines(log_stream)
    assert "request_id" not in entry


def test_a_sane_incoming_request_id_is_echoed(logged_app: Flask) -> None:
    client = logged_app.test_client()
    incoming = "A" * 64

    response = client.get("/healthz", headers={REQUEST_ID_HEADER: incoming})

    assert response.headers[REQUEST_ID_HEADER] == incoming


def test_a_request_id_is_generated_when_none_comes_in(logged_app: Flask) -> None:
    client = logged_app.test_client()

    first = client.get("/healthz").headers[REQUEST_ID_HEADER]
    second = client.get("/no/such/page").headers[REQUEST_ID_HEADER]

    assert SANE.fullmatch(first)
    assert SANE.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "bad",
    ["A" * 65, "has space", "semi;colon", "<script>", "ünïcode", 'quote"d', "a/b", ""],
)
def test_an_unsafe_incoming_request_id_is_replaced(
    logged_app: Flask, log_stream: io.StringIO, bad: str
) -> None:
    client: FlaskClient = logged_app.test_client()

    response = client.get("/healthz", headers={REQUEST_ID_HEADER: bad})

    replaced = response.headers[REQUEST_ID_HEADER]
    assert replaced != bad
    assert SANE.fullmatch(replaced)
    [access] = lines(log_stream)
    assert access["request_id"] == replaced


def test_new_request_ids_are_32_hex_digits_and_unique_across_threads() -> None:
    def draw(_: int) -> list[str]:
        return [new_request_id() for _ in range(2000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [request_id for batch in pool.map(draw, range(8)) for request_id in batch]

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


FORKED_IDS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from server.logs import new_request_id

    new_request_id()  # the master draws ids before it forks its workers
    workers = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            sys.stdout.write("".join(new_request_id() + "\\n" for _ in range(100)))
            sys.stdout.flush()
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
    sys.stdout.write("".join(new_request_id() + "\\n" for _ in range(100)))
    """
)


def test_forked_workers_never_draw_the_same_request_ids() -> None:
    root = Path(__file__).resolve().parents[2]

    result = subprocess.run(
        [sys.executable, "-c", FORKED_IDS_SCRIPT],
        cwd=root,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 300
    assert len(set(ids)) == 300


def test_a_route_answering_without_flask_gets_request_ids_too(log_stream: io.StringIO) -> None:
    def lean(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        logging.getLogger("blanco.test").info("answered without Flask")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = Flask("lean")
    app.wsgi_app = RequestIds(lean)  # type: ignore[method-assign]
    client = app.test_client()

    generated = client.get("/i/x/y.png").headers[REQUEST_ID_HEADER]
    kept = client.get("/i/x/y.png", headers={REQUEST_ID_HEADER: "lb-7f3a.1"})

    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert kept.headers.getlist(REQUEST_ID_HEADER) == ["lb-7f3a.1"]
    assert [entry["request_id"] for entry in lines(log_stream)] == [generated, "lb-7f3a.1"]
    assert current_request_id() is None
