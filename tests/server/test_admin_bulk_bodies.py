"""Bulk bodies: bytes that are not UTF-8 and unclosed CSV quotes are reported by line, and a
body over the size limit is refused before anything is stored, chunked or not."""

from __future__ import annotations

import io

import pytest
import redis
from flask import Flask

from server.services import Services
from tests.factories import AdminApi, csv_file, jsonl, problem, redis_contents

NOW = "2026-11-23T06:00:00Z"

NDJSON = "application/x-ndjson"
CSV = "text/csv"


@pytest.fixture
def api(app: Flask, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(app.test_client(), admin_headers)


def test_a_jsonl_line_that_is_not_utf8_is_refused_by_number(
    api: AdminApi, services: Services
) -> None:
    body = (
        jsonl({"recipient_id": "anna", "attributes": {"first_name": "Anna"}})
        + b'{"recipient_id": "bram", "attributes": {"first_name": "Br\xe4m"}}\n'
        + jsonl({"recipient_id": "chloe", "attributes": {"first_name": "Chlo\u00e9"}})
    )
    report = api.post("/profiles/bulk", data=body, content_type=NDJSON).get_json()
    assert (report["stored"], report["rejected"]) == (2, 1)
    assert report["errors"] == [{"line": 2, "pointer": "", "detail": "not valid UTF-8 (byte 58)"}]
    assert services.recipients.get_profile("bram") is None
    assert services.recipients.get_profile("chloe")["attributes"]["first_name"] == "Chloé"  # type: ignore[index]


def test_a_csv_row_that_is_not_utf8_is_refused_by_number(api: AdminApi, services: Services) -> None:
    body = (
        csv_file(["recipient_id", "first_name"], ["anna", "Anna"])
        + b"bram,Br\xe4m\nchloe,Chlo\xc3\xa9\n"
    )
    report = api.post("/profiles/bulk", data=b"\xef\xbb\xbf" + body, content_type=CSV).get_json()
    assert (report["stored"], report["rejected"]) == (2, 1)
    assert report["errors"] == [{"line": 3, "pointer": "", "detail": "not valid UTF-8"}]
    assert services.recipients.get_profile("bram") is None
    assert services.recipients.get_profile("chloe")["attributes"]["first_name"] == "Chloé"  # type: ignore[index]


def test_an_unclosed_csv_quote_names_the_lines_it_swallowed(api: AdminApi) -> None:
    body = b'recipient_id,first_name\nanna,Anna\nbram,"Bram\nchloe,Chloe\ndaan,Daan\n'
    report = api.post("/profiles/bulk", data=body, content_type=CSV).get_json()
    assert (report["stored"], report["rejected"]) == (1, 1)
    assert report["errors"] == [
        {
            "line": 3,
            "pointer": "",
            "detail": "a quote opened in this row is never closed: lines 3-5 (to the end of "
            "the file) were not read as rows",
        }
    ]


def _rows(count: int) -> bytes:
    return jsonl(
        *({"recipient_id": f"r{n}", "computed_at": NOW, "scores": {"p": 0.5}} for n in range(count))
    )


@pytest.mark.parametrize("chunked", [True, False])
def test_a_body_over_the_limit_is_refused_before_anything_is_stored(
    make_app: object, admin_headers: dict[str, str], redis_client: redis.Redis, chunked: bool
) -> None:
    app: Flask = make_app(bulk_max_bytes=100_000)  # type: ignore[operator]
    api = AdminApi(app.test_client(), admin_headers)
    body = _rows(3000)  # about 150 kB: the first 100 kB hold some 2,000 good rows
    before = redis_contents(redis_client)
    if chunked:  # no Content-Length: the server sees the size only while reading
        response = api.post(
            "/scores/bulk",
            input_stream=io.BytesIO(body),
            content_type=NDJSON,
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
    else:
        response = api.post("/scores/bulk", data=body, content_type=NDJSON)
    assert "BLANCO_BULK_MAX_BYTES" in problem(response, 413)["detail"]
    assert redis_contents(redis_client) == before
    accepted = api.post("/scores/bulk", data=_rows(1000), content_type=NDJSON)
    assert accepted.get_json()["stored"] == 1000


def test_the_report_keeps_the_first_thousand_bad_rows_and_counts_them_all(
    api: AdminApi, services: Services
) -> None:
    bad = [
        {"recipient_id": f"r{n}", "computed_at": NOW, "scores": {"m": "high"}} for n in range(1005)
    ]
    body = jsonl(
        {"recipient_id": "anna", "computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 0.5}}, *bad
    )
    report = api.post("/scores/bulk", data=body, content_type=NDJSON).get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (1006, 1, 1005)
    assert len(report["errors"]) == 1000
    assert [error["line"] for error in report["errors"]] == list(range(2, 1002))
    assert services.recipients.get_scores("anna")
