"""A throwaway primary, replica and Sentinels (``SentinelProcesses``) that tests can fail over."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from redis.sentinel import Sentinel

from tests.redis_servers.process import (
    CONTROL_TIMEOUT_SECONDS,
    HOST,
    START_TIMEOUT_SECONDS,
    RedisProcess,
    RedisServerError,
    Topology,
    free_port,
    no_retry,
    start_all,
    wait_until,
)


class SentinelProcesses(Topology):
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


def _flags(view: dict[str, Any]) -> set[str]:
    """The flags of a parsed ``SENTINEL MASTER`` reply (a string in RESP2, a set in RESP3)."""
    flags = view["flags"]
    return set(flags.split(",")) if isinstance(flags, str) else set(flags)
