"""The OpenAPI document is valid, and the API answers what it says, for generated requests.

openapi-spec-validator checks the document; schemathesis generates a bounded number of requests
per operation (the document's own schemas, plus values that break them) and checks that no
answer is a 5xx and that every status, media type and body is one the document declares. It
runs against the Flask app through WSGI, with an admin key, on the test Redis.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.admin_api.openapi import openapi_document
from server.services import Services
from tests.newsletter_fixtures import item, newsletter_spec, store_newsletter
from tests.sample_images import image_bytes

EXAMPLES_PER_OPERATION = 25
JSON = "application/json"
DAILY = {"campaign_id": "daily"}
NEWSLETTER = "/campaigns/{campaign_id}/newsletter"
SENDS = "/campaigns/{campaign_id}/sends"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_document_is_valid_openapi() -> None:
    validate(openapi_document())


schema = schemathesis.openapi.from_dict(openapi_document())


@schemathesis.serializer("application/x-ndjson")
def json_lines(context: Any, value: Any) -> bytes:
    """A bulk body of one generated line (the document describes one line's object)."""
    return json.dumps(value).encode() + b"\n"


@schemathesis.serializer("text/csv")
def csv_rows(context: Any, value: Any) -> bytes:
    """A CSV body of a header and one row from a generated object (of string cells)."""
    out = io.StringIO()
    if isinstance(value, dict):
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(value.keys())
        writer.writerow(value.values())
    return out.getvalue().encode()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    phases=[Phase.generate],  # no explicit coverage cases (thousands), no shrinking
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_what_its_document_says(
    case: Any, app: Flask, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=app, headers=admin_headers, checks=CHECKS)


def answers_as_documented(
    app: Flask, headers: dict[str, str], method: str, path: str, **case: Any
) -> Any:
    """Send one hand-made request to an operation and run the same checks on its answer."""
    operation = schema[f"/api/v1{path}"][method]
    made = operation.Case(**case)
    return made.call_and_validate(app=app, headers=headers, checks=CHECKS)


@pytest.fixture
def check(app: Flask, admin_headers: dict[str, str]) -> Callable[..., Any]:
    """``check(method, path, **case)``: one hand-made request, answered as documented."""

    def answer(method: str, path: str, **case: Any) -> Any:
        return answers_as_documented(app, admin_headers, method, path, **case)

    return answer


def test_key_and_font_listings_are_documented_arrays(check: Callable[..., Any]) -> None:
    check("GET", "/api-keys")
    check("GET", "/fonts")


def test_uploading_the_same_image_again_answers_a_documented_200(
    check: Callable[..., Any],
) -> None:
    upload = {"data_base64": base64.b64encode(image_bytes("PNG")).decode()}
    assert check("POST", "/assets", body=upload, media_type=JSON).status_code == 201
    assert check("POST", "/assets", body=upload, media_type=JSON).status_code == 200


def test_a_send_time_with_seconds_is_a_documented_time(
    check: Callable[..., Any], services: Services
) -> None:
    store_newsletter(services, [item("i1")])
    spec = newsletter_spec().model_dump(mode="json", by_alias=True, exclude_none=True)
    spec["schedule"]["time"] = "10:00:00"
    newsletter = check("PUT", NEWSLETTER, path_parameters=DAILY, body=spec, media_type=JSON)
    assert newsletter.json()["schedule"]["time"] == "10:00:00"


def test_a_json_lines_send_is_a_documented_media_type(
    check: Callable[..., Any], services: Services
) -> None:
    store_newsletter(services, [item("i1")])
    sent = check("POST", SENDS, path_parameters=DAILY, body={"format": "jsonl"}, media_type=JSON)
    assert sent.headers["content-type"][0].startswith("application/x-ndjson")
