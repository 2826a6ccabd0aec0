"""Declaring admin API operations once: Flask routing, auth, body validation and OpenAPI.

Each view is registered with ``@api.operation(...)``, which records what the OpenAPI document
says about it, so the document and the API cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, g, request
from pydantic import BaseModel, ValidationError

from models.api_keys import Scope
from models.errors import FieldError, Forbidden, InvalidInput, Unauthorized, UnsupportedMediaType
from models.ingest.json_input import parse_json
from server.problems import invalid
from server.services import services

View = Callable[..., Any]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says about one method on one path."""

    method: str
    rule: str
    summary: str
    tag: str
    scope: Scope | None
    body: type[BaseModel] | None = None
    body_media_type: str | None = None
    body_fills: tuple[str, str] | None = None
    other_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    response: type[BaseModel] | None = None
    response_list: bool = False
    status: int = 200
    other_statuses: dict[int, str] = field(default_factory=dict)
    response_media_type: str = "application/json"
    other_response_media_types: tuple[str, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()

    @property
    def path(self) -> str:
        """The OpenAPI form of the Flask rule: ``<x>`` becomes ``{x}``."""
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.rule)

    @property
    def path_parameters(self) -> list[str]:
        """Names of the path parameters."""
        return re.findall(r"<(?:\w+:)?(\w+)>", self.rule)

    @property
    def path_converters(self) -> dict[str, str]:
        """Flask converter of each path parameter (``string`` when the rule names none)."""
        return {
            name: conv or "string" for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", self.rule)
        }


class Api:
    """A blueprint whose operations are declared for OpenAPI."""

    def __init__(self, name: str, url_prefix: str) -> None:
        self.blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
        self.url_prefix = url_prefix
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        tag: str,
        scope: Scope | None = "admin",
        body: type[BaseModel] | None = None,
        body_media_type: str | None = None,
        body_fills: tuple[str, str] | None = None,
        other_bodies: dict[str, dict[str, Any]] | None = None,
        response: type[BaseModel] | None = None,
        response_list: bool = False,
        status: int = 200,
        other_statuses: dict[int, str] | None = None,
        response_media_type: str = "application/json",
        other_response_media_types: tuple[str, ...] = (),
        query: dict[str, str] | None = None,
        errors: tuple[int, ...] = (),
    ) -> Callable[[View], View]:
        """Register a view; validate a JSON ``body`` into the model, passed as ``body=``.

        ``body_fills=(field, path_parameter)`` lets the body omit a field the URL already
        names (and refuses a body that names a different one). With ``body_media_type`` other
        than JSON, ``body`` documents one line of the stream and the view reads it itself.
        ``other_bodies`` documents further request media types (a JSON Schema each, e.g. for
        ``multipart/form-data``); with any, the view reads and validates every body itself.
        ``other_statuses`` documents further success statuses (with their description) that
        answer the same body; ``other_response_media_types`` further media types of it.
        """
        op = Operation(
            method=method,
            rule=rule,
            summary=summary,
            tag=tag,
            scope=scope,
            body=body,
            body_media_type=body_media_type or ("application/json" if body else None),
            body_fills=body_fills,
            other_bodies=other_bodies or {},
            response=response,
            response_list=response_list,
            status=status,
            other_statuses=other_statuses or {},
            response_media_type=response_media_type,
            other_response_media_types=other_response_media_types,
            query=query or {},
            errors=errors,
        )
        self.operations.append(op)

        def decorator(view: View) -> View:
            @functools.wraps(view)
            def wrapped(**kwargs: Any) -> Any:
                if op.scope is not None:
                    authorize(op.scope)
                if (
                    op.body is not None
                    and op.body_media_type == "application/json"
                    and not op.other_bodies
                ):
                    data = request_json()
                    if op.body_fills is not None:
                        data = fill_from_path(data, op.body_fills[0], kwargs[op.body_fills[1]])
                    kwargs["body"] = parse_json_body(op.body, data)
                return view(**kwargs)

            endpoint = f"{view.__name__}_{method.lower()}"
            self.blueprint.add_url_rule(rule, endpoint, wrapped, methods=[method])
            return wrapped

        return decorator


def fill_from_path(data: Any, field_name: str, value: str) -> Any:
    """Put the URL's ``value`` into the body's ``field_name``; refuse a different one."""
    if isinstance(data, dict):
        given = data.setdefault(field_name, value)
        if given != value:
            raise InvalidInput(
                f"the body's {field_name} differs from the URL's",
                [FieldError((field_name,), f"must be {value!r} (as in the URL) or omitted")],
            )
    return data


def authorize(scope: Scope) -> None:
    """Check the bearer API key and its scope; raise Unauthorized or Forbidden."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("send an API key: Authorization: Bearer blk_…")
    key = services().api_keys.authenticate(presented.strip())
    if key is None:
        raise Unauthorized("the API key is not valid")
    if not key.allows(scope):
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    g.api_key = key


def request_json() -> Any:
    """The request body as JSON (nesting bounded, no NaN), or InvalidInput/UnsupportedMediaType."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    return parse_json(request.get_data())


def parse_json_body(model: type[M], data: Any = None) -> M:
    """Validate the JSON body (or ``data``) into ``model``; InvalidInput with field paths."""
    data = request_json() if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, data) from None
