"""The admin API v1 under ``/api/v1``: one ``Api`` whose operations live in the modules here."""

from server.admin_api import api_keys, campaigns, openapi, recipients  # noqa: F401 - registers
from server.admin_api.registry import api

__all__ = ["api"]
