"""Announcing configuration changes to every worker's configuration cache.

Each write of open-time configuration (campaigns, blocks, newsletters, sends, feeds, assets)
moves ``keys.CONFIG_VERSION`` after it is stored; every erasure moves ``keys.PRIVACY_VERSION``.
Workers check both about once a second (``models.config_cache.ConfigCache.refresh``). On a
Redis Cluster the counter lives on another node than the write, so the two are not atomic: a
write whose announcement fails answers an error, and doing it again announces it.
"""

from __future__ import annotations

from typing import Any

from models.storage import keys


def announce_config(client: Any) -> None:
    """Tell every worker that open-time configuration changed."""
    client.incr(keys.CONFIG_VERSION)


def announce_erasure(client: Any) -> None:
    """Tell every worker that a recipient was erased (they drop personal renders they hold)."""
    client.incr(keys.PRIVACY_VERSION)
