"""The admin API v1 under ``/api/v1``: one ``Api`` whose operations live in the modules here."""

from server.admin_api import (  # noqa: F401 - registers the operations
    amp,
    api_keys,
    assets,
    audit,
    campaigns,
    conversions,
    customer_data,
    embed,
    feeds,
    live_data,
    newsletters,
    openapi,
    recipients,
    reports,
    segmentation,
)
from server.admin_api.registry import api

__all__ = ["api"]
