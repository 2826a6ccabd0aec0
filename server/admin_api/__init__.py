"""The admin API v1 under ``/api/v1``: one ``Api`` whose operations live in the modules here."""

from server.admin_api import (  # noqa: F401 - registers the operations
    api_keys,
    assets,
    campaigns,
    openapi,
    recipients,
    reports,
)
from server.admin_api.registry import api

__all__ = ["api"]
