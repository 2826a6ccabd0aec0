"""A throwaway Redis Cluster (``RedisClusterProcesses``) whose slots tests can move."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_servers.process import (
    CONTROL_TIMEOUT_SECONDS,
    HOST,
    START_TIMEOUT_SECONDS,
    RedisProcess,
    RedisServerError,
    Topology,
    no_retry,
    start_all,
    wait_until,
)

CLUSTER_SLOTS = 16384
MIGRATE_BATCH = 100
"""Keys moved per ``MIGRATE``."""
MIGRATE_TIMEOUT_MS = 5000


@dataclass(frozen=True, order=True)
class SlotRange:
    """Slots ``first``…``last`` (inclusive), served by the primary on ``port``."""

    first: int
    last: int
    port: int

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self.first <= slot <= self.last


def home_ranges(masters: int) -> list[tuple[int, int]]:
    """The slots split in ``masters`` contiguous ranges, as ``redis-cli --cluster create`` does."""
    share = CLUSTER_SLOTS / masters
    return [(round(i * share), round((i + 1) * share) - 1) for i in range(masters)]


class RedisClusterProcesses(Topology):
    """A Redis Cluster of ``masters`` primaries (no replicas) on free ports of 127.0.0.1.

    ``start()`` launches one ``cluster-enabled`` server per primary, gives each its share of the
    slots (``CLUSTER ADDSLOTS``), joins them (``CLUSTER MEET``) and waits until every node says
    ``cluster_state:ok`` and all agree on the slot map: about 2 s, as a Redis primary waits 2 s
    after it starts before it calls its cluster ok (``CLUSTER_WRITABLE_DELAY`` in cluster.c).
    Slots can then be moved as a real resharding does, or left half-moved to get ``ASK``
    redirections; ``reset()`` empties the cluster and puts every slot back home.
    """

    def __init__(self, folder: Path, *, masters: int = 3, node_timeout_ms: int = 5000) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one primary")
        self.folder = folder.resolve()
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisProcess] = []
        config = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
            "cluster-require-full-coverage yes",
        ]
        for index in range(masters):
            node = RedisProcess(self.folder / f"node-{index}", config=config, cluster_bus=True)
            self.nodes.append(node)
        self._ids: dict[int, str] = {}
        self._homes: dict[int, tuple[int, int]] = {}

    @property
    def ports(self) -> list[int]:
        """Every primary's port."""
        return [node.port for node in self.nodes]

    @property
    def urls(self) -> list[str]:
        """Every primary's ``redis://`` URL."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """One node's URL: enough for a cluster client, which discovers the others."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        """Every primary, for ``RedisCluster(startup_nodes=…)``."""
        return [ClusterNode(HOST, node.port) for node in self.nodes]

    def client(self, **options: Any) -> RedisCluster:
        """A new ``RedisCluster`` client (decoded replies unless told otherwise)."""
        options.setdefault("decode_responses", True)
        options.setdefault("socket_timeout", CONTROL_TIMEOUT_SECONDS)
        return RedisCluster(startup_nodes=self.startup_nodes, **options)

    def start(self) -> RedisClusterProcesses:
        """Start the nodes, assign the slots, join them and wait for a healthy, agreed map."""
        start_all(self.nodes)
        self._homes = dict(zip(self.ports, home_ranges(len(self.nodes)), strict=True))
        try:
            for epoch, node in enumerate(self.nodes, start=1):
                with self._control(node) as control:
                    control.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
                    first, last = self._homes[node.port]
                    control.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
            for node in self.nodes:  # every pair meets: no waiting for gossip to introduce them
                with self._control(node) as control:
                    for other in self.nodes:
                        if other is not node:
                            control.execute_command("CLUSTER", "MEET", HOST, other.port)
            self.wait_until_agreed()
        except BaseException:
            self.stop()
            raise
        return self

    @contextlib.contextmanager
    def _control(self, node: RedisProcess, *, decode: bool = True) -> Iterator[redis.Redis]:
        client = node.client(decode_responses=decode, retry=no_retry())
        try:
            yield client
        finally:
            client.close()

    def node_id(self, node: RedisProcess) -> str:
        """The node's cluster id (``CLUSTER MYID``)."""
        if node.port not in self._ids:
            with self._control(node) as control:
                self._ids[node.port] = str(control.execute_command("CLUSTER", "MYID"))
        return self._ids[node.port]

    def node_at(self, port: int) -> RedisProcess:
        """The node listening on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def slot_map(self, node: RedisProcess | None = None) -> list[SlotRange]:
        """The slot ranges and their primaries, as ``node`` (else the first node) sees them."""
        with self._control(node or self.nodes[0]) as control:
            reply = control.execute_command("CLUSTER", "SLOTS")
        return _slot_ranges(reply)

    def keyslot(self, key: str) -> int:
        """The hash slot of ``key`` (``CLUSTER KEYSLOT``)."""
        with self._control(self.nodes[0]) as control:
            return int(control.execute_command("CLUSTER", "KEYSLOT", key))

    def owner(self, slot: int) -> RedisProcess:
        """The primary that serves ``slot``."""
        for slots in self.slot_map():
            if slot in slots:
                return self.node_at(slots.port)
        raise RedisServerError(f"no node serves slot {slot}")

    def node_for_key(self, key: str) -> RedisProcess:
        """The primary that serves ``key``."""
        return self.owner(self.keyslot(key))

    def home(self, slot: int) -> RedisProcess:
        """The primary ``start()`` gave ``slot`` to."""
        for port, (first, last) in self._homes.items():
            if first <= slot <= last:
                return self.node_at(port)
        raise ValueError(f"no slot {slot}")

    def key_in(self, node: RedisProcess, prefix: str = "key") -> str:
        """A key (``<prefix>:<n>``) that ``node`` serves now."""
        ranges = [r for r in self.slot_map() if r.port == node.port]
        for n in range(100_000):
            key = f"{prefix}:{n}"
            if any(self.keyslot(key) in r for r in ranges):
                return key
        raise RedisServerError(f"no key found for {node}")

    def wait_until_agreed(self, timeout: float = START_TIMEOUT_SECONDS) -> list[SlotRange]:
        """Wait until every node says ``cluster_state:ok`` and reports the same full slot map."""

        def agreed() -> list[SlotRange] | None:
            maps = []
            for node in self.nodes:
                with self._control(node) as control:
                    if "cluster_state:ok" not in control.execute_command("CLUSTER", "INFO"):
                        return None
                maps.append(self.slot_map(node))
            covered = sum(r.last - r.first + 1 for r in maps[0])
            if covered != CLUSTER_SLOTS or any(m != maps[0] for m in maps):
                return None
            return maps[0]

        return wait_until(agreed, timeout, "the cluster to agree on its slot map")

    def flushall(self) -> None:
        """Empty every primary."""
        for node in self.nodes:
            with self._control(node) as control:
                control.flushall()

    def start_slot_migration(
        self, slot: int, target: RedisProcess, keys: Collection[str] = ()
    ) -> RedisProcess:
        """Begin moving ``slot`` to ``target`` and move only ``keys`` (of that slot); return
        the source.

        The slot is then ``IMPORTING`` on the target and ``MIGRATING`` on the source: the source
        answers ``ASK`` for a key it no longer has, the target serves it after ``ASKING``.
        """
        source = self.owner(slot)
        if source.port == target.port:
            raise ValueError(f"slot {slot} is already on {target}")
        with self._control(target) as control:
            control.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        with self._control(source) as control:
            control.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))
        if keys:
            wrong = [key for key in keys if self.keyslot(key) != slot]
            if wrong:
                raise ValueError(f"keys not in slot {slot}: {wrong}")
            self._migrate(source, target, list(keys))
        return source

    def finish_slot_migration(self, slot: int, target: RedisProcess) -> None:
        """Move the rest of ``slot``'s keys to ``target`` and give it the slot on every node."""
        source = self.owner(slot)
        with self._control(source, decode=False) as control:
            while batch := control.execute_command("CLUSTER", "GETKEYSINSLOT", slot, MIGRATE_BATCH):
                self._migrate(source, target, batch)
        target_id = self.node_id(target)
        others = [n for n in self.nodes if n.port not in (target.port, source.port)]
        for node in [target, source, *others]:  # the order redis-cli --cluster uses
            with self._control(node) as control:
                control.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        wait_until(
            lambda: all(self._sees_owner(n, slot, target) for n in self.nodes),
            START_TIMEOUT_SECONDS,
            f"every node to see slot {slot} on {target}",
        )

    def migrate_slot(self, slot: int, target: RedisProcess) -> RedisProcess:
        """Move ``slot`` and its keys to ``target`` as a resharding does; return the source."""
        source = self.start_slot_migration(slot, target)
        self.finish_slot_migration(slot, target)
        return source

    def _migrate(self, source: RedisProcess, target: RedisProcess, keys: Sequence[Any]) -> None:
        with self._control(source, decode=False) as control:
            control.execute_command(
                "MIGRATE", HOST, target.port, "", 0, MIGRATE_TIMEOUT_MS, "KEYS", *keys
            )

    def _sees_owner(self, node: RedisProcess, slot: int, owner: RedisProcess) -> bool:
        return any(slot in r and r.port == owner.port for r in self.slot_map(node))

    def pause_node(self, node: RedisProcess, seconds: float) -> None:
        """Hold every client command on ``node`` for ``seconds`` (``CLIENT PAUSE``)."""
        node.pause(seconds)

    def reset(self) -> None:
        """Empty the cluster and undo migrations: every slot stable and back on its home node."""
        self.flushall()
        for node in self.nodes:
            with self._control(node) as control:
                for slot in _unstable_slots(control.execute_command("CLUSTER", "NODES")):
                    control.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        for slots in self.slot_map():
            for slot in range(slots.first, slots.last + 1):
                home = self.home(slot)
                if home.port != slots.port:
                    self.migrate_slot(slot, home)
        self.wait_until_agreed()

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def _slot_ranges(reply: Sequence[Sequence[Any]]) -> list[SlotRange]:
    """``CLUSTER SLOTS`` as sorted ranges (each with its primary's port)."""
    return sorted(SlotRange(int(entry[0]), int(entry[1]), int(entry[2][1])) for entry in reply)


def _unstable_slots(nodes_reply: str) -> list[int]:
    """Slots that ``CLUSTER NODES`` shows as migrating or importing on the node asked
    (``[slot->-id]``, ``[slot-<-id]`` on its ``myself`` line)."""
    for line in nodes_reply.splitlines():
        fields = line.split()
        if len(fields) > 2 and "myself" in fields[2].split(","):
            return [int(f[1:].split("-")[0]) for f in fields[8:] if f.startswith("[")]
    return []
