"""Blanco's exceptions: each carries an HTTP status and a message safe to show a client."""

from __future__ import annotations

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


def _json_path(loc: tuple[int | str, ...], data: Any) -> tuple[str | int, ...]:
    """Follow ``loc`` through the input, dropping the tags pydantic adds for tagged unions."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict):
            value = current.get(part, current) if isinstance(part, str) else current
            last_part = index == len(loc) - 1
            if value is not current and (last_part or isinstance(value, dict | list)):
                path.append(part)
                current = value
            # else: a union tag (also when it equals a key, e.g. "attr"), or a missing field
        elif isinstance(current, list):
            if isinstance(part, int) and 0 <= part < len(current):
                path.append(part)
                current = current[part]
        else:
            path.append(part)
    last = loc[-1] if loc else None
    missing = isinstance(current, dict) and isinstance(last, str) and last not in current
    if missing and (not path or path[-1] != last):
        path.append(last)  # type: ignore[arg-type]
    return tuple(path)


def field_errors(
    exc: ValidationError, data: Any, prefix: tuple[str | int, ...] = ()
) -> list[FieldError]:
    """Each pydantic error as a FieldError whose path follows the submitted JSON."""
    errors = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        errors.append(FieldError(prefix + _json_path(tuple(err["loc"]), data), message))
    return errors
