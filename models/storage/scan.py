"""SCAN over every primary: jobs that walk all keys of a kind (the audience export,
segmentation) must see every node of a Redis Cluster, not the one a client happens to ask.

On a cluster the walk is only trusted while the cluster stands still: a slot that is being
migrated can move keys from a node not yet scanned to one already scanned, and a node that fails
mid-walk hides its keys. ``scan_every_primary`` therefore checks, before it starts and after it
ends, that no slot is migrating and the slot map is the same, and raises ``TopologyChanged``
otherwise; a node that fails raises its Redis error. Callers fail loudly instead of acting on a
short count. A key returned twice (SCAN may) is the caller's to count once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from redis.cluster import RedisCluster

from models.storage.clients import cluster_of


class TopologyChanged(RuntimeError):
    """The cluster's slots moved (or were moving) during a walk over every key."""


def scan_every_primary(
    client: Any, match: str, count: int, key_type: str | None = None
) -> Iterator[str]:
    """Every key matching ``match`` (of ``key_type``, if given) on every primary."""
    cluster = cluster_of(client)
    if cluster is None:
        yield from client.scan_iter(match=match, count=count, _type=key_type)
        return
    cluster.nodes_manager.initialize()  # the cluster as it is now: a primary may have joined
    before = slot_layout(cluster)
    walked = set()
    for node in cluster.get_primaries():
        node_client = cluster.get_redis_connection(node)
        walked.add(_own_id(node_client))
        yield from node_client.scan_iter(match=match, count=count, _type=key_type)
    after = slot_layout(cluster)
    if after != before or {node_id for _, _, node_id in after} != walked:
        raise TopologyChanged(
            "the Redis Cluster's slots moved during the walk; run it again once it is stable"
        )


def slot_layout(cluster: RedisCluster) -> tuple[tuple[int, int, str], ...]:
    """Which node serves which slot ranges, as every primary reports it; TopologyChanged when
    a slot is migrating or importing, or the primaries disagree."""
    layouts = set()
    for node in cluster.get_primaries():
        node_client = cluster.get_redis_connection(node)
        text = _nodes(node_client)
        if "->-" in text or "-<-" in text:
            raise TopologyChanged(
                f"slots are being migrated on {node.name}; run it again once the cluster is stable"
            )
        layouts.add(_ranges(text))
    if len(layouts) != 1:
        raise TopologyChanged("the Redis Cluster's nodes disagree about its slots")
    return layouts.pop()


def _nodes(node_client: Any) -> str:
    """``CLUSTER NODES`` as text (asked as two words: redis-py parses the one-word form)."""
    reply = node_client.execute_command("CLUSTER", "NODES")
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _own_id(node_client: Any) -> str:
    """The node id of the node ``node_client`` talks to."""
    for line in _nodes(node_client).splitlines():
        parts = line.split()
        if len(parts) > 2 and "myself" in parts[2]:
            return parts[0]
    raise TopologyChanged("a node did not say who it is")


def _ranges(text: str) -> tuple[tuple[int, int, str], ...]:
    """(first slot, last slot, node id) of every served range in ``CLUSTER NODES`` text."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 9 or "master" not in parts[2]:
            continue
        for part in parts[8:]:
            if part.startswith("["):
                continue
            first, _, last = part.partition("-")
            found.append((int(first), int(last or first), parts[0]))
    return tuple(sorted(found))
