"""Bulk request bodies: JSON Lines or CSV, streamed into the ingest functions by media type."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from models.bulk_ingest import BulkReport, ingest_csv, ingest_jsonl
from models.csv_rows import CsvKind
from models.errors import UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
CSV_TYPE = "text/csv"


def ingest_request(kind: CsvKind[M], store: Callable[[list[M]], int]) -> BulkReport:
    """Ingest the request body, JSON Lines or CSV (UTF-8, header row), into ``store``."""
    if request.mimetype in JSONL_TYPES:
        return ingest_jsonl(request.stream, kind.model, store)
    if request.mimetype == CSV_TYPE:
        lines = codecs.iterdecode(request.stream, "utf-8-sig", errors="replace")
        return ingest_csv(lines, kind, store)
    raise UnsupportedMediaType(
        "send JSON Lines (application/x-ndjson) or CSV with a header row (text/csv)"
    )


def csv_body(kind: CsvKind[Any]) -> dict[str, dict[str, Any]]:
    """The OpenAPI description of a CSV body of ``kind``: the columns of one row."""
    extra = {
        "attributes": "Any other column is an attribute (`name`, or `name:str` to keep text).",
        "scores": "Any other column is a model name; its cells are that model's values.",
    }.get(kind.extra or "", "")
    schema: dict[str, Any] = {
        "type": "object",
        "description": "A header row names the columns; each further line is one row. "
        "Empty cells are skipped. " + extra,
        "properties": {name: {"type": "string"} for name in kind.fields},
        "required": list(kind.required),
        "additionalProperties": {"type": "string"} if kind.extra else False,
    }
    return {CSV_TYPE: schema}
