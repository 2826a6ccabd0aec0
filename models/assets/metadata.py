"""Uploaded image assets: images that renderers draw, identified by the hash of their bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ASSET_ID_PATTERN = r"^sha256:[0-9a-f]{64}$"
MAX_NAME_LENGTH = 200
MediaType = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
AssetName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
"""A label for people: 1-200 characters, no control characters."""

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def asset_id_for(data: bytes) -> str:
    """The id of an image: ``sha256:`` and the hex SHA-256 of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def valid_asset_id(value: str) -> bool:
    """Whether ``value`` has the form of an asset id."""
    return re.fullmatch(ASSET_ID_PATTERN, value) is not None


def default_name(asset_id: str, media_type: str) -> str:
    """The name of an asset uploaded without one, e.g. ``3f2a9c01b7de.png``."""
    return f"{asset_id.removeprefix('sha256:')[:12]}.{EXTENSIONS.get(media_type, 'img')}"


class Asset(BaseModel):
    """Metadata of an uploaded image. The bytes are stored as uploaded, beside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=ASSET_ID_PATTERN,
        description="`sha256:` and the hex SHA-256 of the bytes; renderers name the image by it.",
    )
    media_type: MediaType = Field(description="The type found in the content.")
    width: int = Field(gt=0, description="Width in pixels.")
    height: int = Field(gt=0, description="Height in pixels.")
    frames: int = Field(1, gt=0, description="Number of frames (more than 1 when animated).")
    bytes: int = Field(gt=0, description="Size of the file, in bytes.")
    created_at: dt.datetime = Field(description="When it was first uploaded.")
    name: str = Field(
        max_length=MAX_NAME_LENGTH, description="A label; the first upload's name is kept."
    )
