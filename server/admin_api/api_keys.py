"""Admin API: API keys and the bundled fonts."""

from __future__ import annotations

import datetime as dt

from flask import Response, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from models.api_keys import Scope
from renderers.fonts import families
from server.admin_api.registry import api
from server.services import services

TAG = "admin"


class ApiKeyRequest(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyInfo(BaseModel):
    """An API key as the API shows it: never its secret."""

    id: str
    name: str
    scopes: list[Scope]
    created_at: dt.datetime


class CreatedApiKey(ApiKeyInfo):
    """A new API key, with the key itself (shown this once only)."""

    key: str = Field(description="The key to send as `Authorization: Bearer …`.")


class FontFamily(BaseModel):
    """A bundled font family."""

    family: str
    weights: list[str]
    default: bool
    license: str
    license_spdx: str
    license_file: str


@api.operation(
    "POST",
    "/api-keys",
    summary="Create an API key (the key is shown only once)",
    tag=TAG,
    body=ApiKeyRequest,
    response=CreatedApiKey,
    status=201,
    errors=(422,),
)
def create_api_key(body: ApiKeyRequest) -> ResponseReturnValue:
    """Create a key with the given scopes."""
    record, plain = services().api_keys.create(body.name, body.scopes)
    return jsonify({**record.public(), "key": plain}), 201


@api.operation(
    "GET",
    "/api-keys",
    summary="List API keys (without secrets)",
    tag=TAG,
    response=ApiKeyInfo,
    response_list=True,
)
def list_api_keys() -> ResponseReturnValue:
    """Every key, oldest first."""
    return jsonify([k.public() for k in services().api_keys.list()])


@api.operation(
    "DELETE",
    "/api-keys/<key_id>",
    summary="Revoke an API key",
    tag=TAG,
    status=204,
    errors=(404,),
)
def revoke_api_key(key_id: str) -> ResponseReturnValue:
    """Revoke a key at once."""
    services().api_keys.revoke(key_id)
    return Response(status=204)


@api.operation(
    "GET",
    "/fonts",
    summary="Fonts available to renderers",
    tag=TAG,
    response=FontFamily,
    response_list=True,
)
def list_fonts() -> ResponseReturnValue:
    """Bundled font families, their weights and licences."""
    return jsonify(families())
