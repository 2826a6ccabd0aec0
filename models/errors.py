"""Blanco's exceptions: each carries an HTTP status and a message safe to show a client."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of the input, located by its path."""

    path: tuple[str | int, ...]
    message: str

    @property
    def pointer(self) -> str:
        """The path as a JSON Pointer (RFC 6901), e.g. ``/variants/0/target_url``."""
        parts = (str(p).replace("~", "~0").replace("/", "~1") for p in self.path)
        return "/" + "/".join(parts) if self.path else ""

    @property
    def field(self) -> str:
        """The path in dotted form, e.g. ``variants.0.target_url``."""
        return ".".join(str(p) for p in self.path)


class BlancoError(Exception):
    """Base of every error Blanco answers on purpose. Only ``public_message`` reaches clients."""

    status_code = 500
    title = "Internal error"

    def __init__(self, public_message: str, *, private_message: str = "") -> None:
        super().__init__(private_message or public_message)
        self.public_message = public_message


class Unauthorized(BlancoError):
    status_code = 401
    title = "Unauthorized"


class Forbidden(BlancoError):
    status_code = 403
    title = "Forbidden"


class NotFound(BlancoError):
    status_code = 404
    title = "Not found"


class Conflict(BlancoError):
    status_code = 409
    title = "Conflict"


@dataclass(frozen=True)
class Refusal:
    """One row a store refused: its position in what the store was given, where the problem
    is (a JSON Pointer into the row) and why."""

    index: int
    pointer: str
    message: str


class RowsRefused(Conflict):
    """Some rows were refused, each for its own reason; the others were stored (``stored``).
    The bulk ingest reports them as bad rows; a single write answers with the first."""

    def __init__(self, refusals: Sequence[Refusal], stored: int, message: str = "") -> None:
        super().__init__(message or (refusals[0].message if refusals else "rows were refused"))
        self.refusals = list(refusals)
        self.stored = stored


class Gone(BlancoError):
    status_code = 410
    title = "Gone"


class PreconditionFailed(BlancoError):
    status_code = 412
    title = "Precondition failed"


class PayloadTooLarge(BlancoError):
    status_code = 413
    title = "Payload too large"


class UnsupportedMediaType(BlancoError):
    status_code = 415
    title = "Unsupported media type"


class InvalidInput(BlancoError):
    status_code = 422
    title = "Invalid input"

    def __init__(self, public_message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(public_message)
        self.errors = errors or []


def _json_path(
    loc: tuple[int | str, ...], data: Any, missing: bool = False
) -> tuple[str | int, ...]:
    """Follow ``loc`` through the input, dropping what pydantic adds that the JSON lacks: tags
    of tagged unions (also when a tag equals a key, e.g. ``score``), names of union members
    (``str``, ``int``) and ``[key]``. With ``missing``, the last part is the absent field."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict):
            if not isinstance(part, str) or part not in current:
                continue  # a tag or a union member's name (a missing field is added below)
            value = current[part]
            if index + 1 < len(loc) and _is_tag(part, value, loc[index + 1], current):
                continue
            path.append(part)
            current = value
        elif isinstance(current, list):
            if isinstance(part, int) and 0 <= part < len(current):
                path.append(part)
                current = current[part]
        else:
            break  # inside a scalar, the rest names union members or ``[key]``
    last = loc[-1] if loc else None
    if missing and isinstance(last, str) and (not path or path[-1] != last):
        path.append(last)
    return tuple(path)


def _is_tag(part: str, value: Any, following: int | str, current: dict[str, Any]) -> bool:
    """Whether ``part``, a key of ``current``, stands in ``loc`` as a tagged union's tag."""
    if isinstance(value, dict | list):  # {"all": [...]}: tag "all", then field "all"
        return following == part and not (isinstance(value, dict) and part in value)
    return isinstance(following, str) and following in current  # {"attr": "x", "eq": ...}


def field_errors(
    exc: ValidationError, data: Any, prefix: tuple[str | int, ...] = ()
) -> list[FieldError]:
    """Each pydantic error as a FieldError whose path follows the submitted JSON."""
    errors = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        path = _json_path(tuple(err["loc"]), data, missing=err["type"] == "missing")
        errors.append(FieldError(prefix + path, message))
    return errors
