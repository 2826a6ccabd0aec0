"""Whether Redis can serve: every node answers, and a cluster says its state is ok.

A load balancer asks ``/readyz``; on a Redis Cluster one answering node is not enough, since
the recipients whose slots live on a silent node would all get fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.storage.batch import REDIS_FAILURES, SINGLE_NODE
from models.storage.clients import cluster_of


@dataclass(frozen=True)
class RedisHealth:
    """Each node's answer to PING (``ok`` or the error's name), and a cluster's state."""

    nodes: dict[str, str] = field(default_factory=dict)
    cluster_state: str | None = None
    """``ok``, ``fail`` or the error met asking; None on a single Redis."""

    @property
    def ready(self) -> bool:
        """Whether every node answers (and the cluster is ok)."""
        nodes_ok = bool(self.nodes) and all(state == "ok" for state in self.nodes.values())
        return nodes_ok and self.cluster_state in (None, "ok")


def redis_health(client: Any) -> RedisHealth:
    """Ask every node (every primary of a cluster) for PING, and a cluster for its state; on a
    cluster where a node does not answer, read the slot map again first and ask once more."""
    cluster = None
    try:
        cluster = cluster_of(client)
    except REDIS_FAILURES as exc:  # a cluster client discovers the cluster on first use
        return RedisHealth({"cluster": type(exc).__name__}, type(exc).__name__)
    if cluster is None:
        return RedisHealth({SINGLE_NODE: _ping(client)})
    health = _cluster_health(cluster)
    if health.ready:
        return health
    try:  # a node failed: a replica may have taken its slots over since the map was read
        cluster.nodes_manager.initialize()
    except REDIS_FAILURES:
        return health
    return _cluster_health(cluster)


def _cluster_health(cluster: Any) -> RedisHealth:
    nodes = {}
    state = None
    for node in cluster.get_primaries():
        node_client = cluster.get_redis_connection(node)
        nodes[node.name] = _ping(node_client)
        if nodes[node.name] == "ok" and state in (None, "ok"):
            state = _cluster_state(node_client)
    return RedisHealth(nodes, state or "unknown")


def _ping(client: Any) -> str:
    try:
        client.ping()
    except REDIS_FAILURES as exc:
        return type(exc).__name__
    return "ok"


def _cluster_state(client: Any) -> str:
    try:
        info = client.execute_command("CLUSTER", "INFO")
    except REDIS_FAILURES as exc:
        return type(exc).__name__
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "cluster_state":
            return value.strip()
    return "unknown"
