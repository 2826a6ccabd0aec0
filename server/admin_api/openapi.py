"""The OpenAPI 3.1 document, generated from the declared operations and their pydantic models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.admin_api.registry import api
from server.api_operations import Operation

REF = "#/components/schemas/{model}"
PATH_TYPES = {"int": "integer", "float": "number"}  # other Flask converters are strings
PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "description": "JSON Pointer to the field"},
                    "field": {"type": "string", "description": "Dotted field path"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
ERROR_TEXT = {
    401: "Missing or invalid API key",
    403: "The API key lacks the scope",
    404: "Not found",
    409: "Conflict with what is stored",
    410: "The recipient was erased",
    412: "If-Match does not name the current version",
    413: "The request body is larger than the server accepts",
    415: "Unsupported media type",
    422: "Invalid input; `errors` locates each problem",
    503: "Redis is unavailable or full; retry after `Retry-After` seconds",
}


def _schema_ref(model: type[BaseModel], as_list: bool = False) -> dict[str, Any]:
    ref = {"$ref": REF.format(model=model.__name__)}
    return {"type": "array", "items": ref} if as_list else ref


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}".replace(
            "{", ""
        ).replace("}", ""),
        "tags": [op.tag],
    }
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": PATH_TYPES.get(conv, "string")},
        }
        for name, conv in op.path_converters.items()
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": name == "recipient_id",
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in op.query.items()
    ]
    if parameters:
        doc["parameters"] = parameters
    content: dict[str, Any] = {}
    if op.body is not None and op.body_media_type:
        content[op.body_media_type] = {"schema": _schema_ref(op.body)}
    content.update({media: {"schema": schema} for media, schema in op.other_bodies.items()})
    if content:
        doc["requestBody"] = {"required": True, "content": content}
        if op.body_media_type and op.body_media_type != "application/json":
            doc["requestBody"]["description"] = "One JSON object per line" + (
                "; or CSV: a header row, then one row per line." if "text/csv" in content else "."
            )
    success: dict[str, Any] = {"description": "Success"}
    if op.status != 204:
        if op.response is not None:
            schema = _schema_ref(op.response, op.response_list)
        elif op.response_media_type.startswith("image/"):
            schema = {"type": "string", "format": "binary"}
        else:
            schema = {"type": "object"}
        success["content"] = {
            media: {"schema": schema}
            for media in (op.response_media_type, *op.other_response_media_types)
        }
    responses: dict[str, Any] = {str(op.status): success}
    for status, description in op.other_statuses.items():
        responses[str(status)] = {**success, "description": description}
    errors = set(op.errors)
    if op.body is not None and op.body_media_type == "application/json":
        errors |= {415, 422}  # request_json and the model's validation
    if content:
        errors.add(413)  # every body is limited by BLANCO_BULK_MAX_BYTES
    if op.scope is not None:
        errors |= {401, 403, 503}  # 503: Redis, which holds the keys, is down or full
        doc["security"] = [{"apiKey": []}]
        doc["description"] = f"Needs an API key with the `{op.scope}` scope (or `admin`)."
    for code in sorted(errors):
        responses[str(code)] = _problem(ERROR_TEXT[code])
    doc["responses"] = responses
    return doc


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document."""
    models = {m for op in api.operations for m in (op.body, op.response) if m is not None}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    schemas = dict(definitions.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        paths.setdefault(api.url_prefix + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Blanco admin API",
            "version": "1",
            "description": "Configure campaigns, blocks and variants; push recipient data.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


@api.operation("GET", "/openapi.json", summary="This OpenAPI document", tag="admin", scope=None)
def openapi() -> ResponseReturnValue:
    """The OpenAPI document of the admin API."""
    return jsonify(openapi_document())
