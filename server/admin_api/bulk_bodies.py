"""Bulk request bodies: JSON Lines or CSV, read whole, then ingested line by line by media type.

The body is read in 64 KiB chunks (not line by line from the WSGI stream, which reads a byte at
a time) into memory, spilling to a temporary file past 8 MiB, before any row is stored. A body
over ``BLANCO_BULK_MAX_BYTES`` is refused with 413 before anything is written, also when it
comes chunked without a ``Content-Length``; a rejected request loses nothing and stores
nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import IO, Any, TypeVar

from flask import request
from pydantic import BaseModel
from werkzeug.exceptions import RequestEntityTooLarge

from models.errors import PayloadTooLarge, UnsupportedMediaType
from models.ingest.bulk_ingest import BulkReport, ingest_csv, ingest_jsonl
from models.ingest.csv_rows import CsvKind
from server.services import services

M = TypeVar("M", bound=BaseModel)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
CSV_TYPE = "text/csv"
READ_SIZE = 64 * 1024
IN_MEMORY_BYTES = 8 * 1024 * 1024
"""Past this many bytes a spooled body moves from memory to a temporary file."""


def ingest_request(kind: CsvKind[M], store: Callable[[list[M]], int]) -> BulkReport:
    """Ingest the request body, JSON Lines or CSV (UTF-8, header row), into ``store``."""
    if request.mimetype not in (*JSONL_TYPES, CSV_TYPE):
        raise UnsupportedMediaType(
            "send JSON Lines (application/x-ndjson) or CSV with a header row (text/csv)"
        )
    with spooled_body() as body:
        if request.mimetype == CSV_TYPE:
            return ingest_csv(body, kind, store)
        return ingest_jsonl(body, kind.model, store)


def spooled_body() -> IO[bytes]:
    """The whole request body, rewound; PayloadTooLarge (nothing read is kept) when it is
    longer than ``BLANCO_BULK_MAX_BYTES``."""
    limit = services().settings.bulk_max_bytes
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
    try:
        stream = request.stream
        while chunk := stream.read(READ_SIZE):
            spool.write(chunk)
            if spool.tell() > limit:
                raise RequestEntityTooLarge()
    except RequestEntityTooLarge:
        spool.close()
        raise PayloadTooLarge(
            f"the body is larger than {limit} bytes (BLANCO_BULK_MAX_BYTES); nothing was "
            "stored: split it into smaller requests"
        ) from None
    spool.seek(0)
    return spool


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
