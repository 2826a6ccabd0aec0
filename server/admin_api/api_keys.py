"""Admin API: API keys and the bundled fonts."""

from __future__ import annotations

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


@api.operation(
    "POST",
    "/api-keys",
    summary="Create an API key (the key is shown only once)",
    tag=TAG,
    body=ApiKeyRequest,
    status=201,
    errors=(422,),
)
def create_api_key(body: ApiKeyRequest) -> ResponseReturnValue:
    """Create a key with the given scopes."""
    record, plain = services().api_keys.create(body.name, body.scopes)
    return jsonify({**record.public(), "key": plain}), 201


@api.operation("GET", "/api-keys", summary="List API keys (without secrets)", tag=TAG)
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


@api.operation("GET", "/fonts", summary="Fonts available to renderers", tag=TAG)
def list_fonts() -> ResponseReturnValue:
    """Bundled font families, their weights and licences."""
    return jsonify(families())
