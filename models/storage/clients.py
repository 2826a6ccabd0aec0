"""Redis clients from one URL: a single Redis, a Redis Cluster, or the primary a Sentinel
setup names.

- ``redis://[user:password@]host:port[/db]``, ``rediss://…``, ``unix:///path.sock[?db=n]``:
  one Redis;
- ``redis+cluster://[user:password@]host:port[,host:port…]``, ``rediss+cluster://…``: a Redis
  Cluster, discovered from any of the nodes;
- ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]``,
  ``rediss+sentinel://…``: the primary of ``service``, as the sentinels report it.

The credentials authenticate to the data nodes; sentinels that require their own password take
it from ``?sentinel_password=``. ``redact`` hides the passwords for logs and printed output.

A cluster client discovers the cluster when it is first used, not when it is built, so that
an app can start (and serve fallbacks) while Redis is away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

Kind = Literal["single", "cluster", "sentinel"]
SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


log = logging.getLogger(__name__)


class RedisUrlError(ValueError):
    """A Redis URL Blanco cannot use; the message says why (without the password)."""


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL points at."""

    kind: Kind
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    """Cluster seed nodes or sentinels."""
    service: str | None = None
    """The Sentinel service name."""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_password: str | None = None

    @property
    def redacted(self) -> str:
        """The URL with its passwords hidden."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with any password (in the credentials or a query parameter) replaced by
    ``***``; safe to log or print. A password may hold ``/``, ``?`` or ``#`` (base64 ones do):
    the credentials end at the last ``@``."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest:
        userinfo, _, tail = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{tail}" if colon else f"***@{tail}"
    redacted = f"{scheme}://{rest}"
    if "?" in redacted:
        head, _, query = redacted.partition("?")
        parts = [
            f"{name}=***" if "password" in name.lower() else f"{name}={value}"
            for name, _, value in (p.partition("=") for p in query.split("&") if p)
        ]
        redacted = f"{head}?{'&'.join(parts)}"
    return redacted


def _hosts(authority: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    found = []
    for part in authority.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon:
            host, port = part.strip(), str(default_port)
        host = host.strip("[]")
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(f"{redact(url)}: {part.strip()!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)


def parse_redis_url(url: str) -> RedisTarget:
    """What ``url`` points at; RedisUrlError for a URL Blanco cannot use."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in SINGLE_SCHEMES:
        try:
            redis.connection.parse_url(url)
        except ValueError as exc:
            raise RedisUrlError(f"{redact(url)}: {exc}") from None
        return RedisTarget("single", url, tls=scheme == "rediss")
    if scheme not in CLUSTER_SCHEMES + SENTINEL_SCHEMES:
        raise RedisUrlError(
            f"{redact(url)}: use redis://, rediss://, unix://, redis+cluster://, "
            "rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
        )
    parts = urlsplit(url)
    userinfo, _, authority = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    if not authority:
        raise RedisUrlError(f"{redact(url)}: name at least one host:port")
    query = parse_qs(parts.query)
    tls = scheme.startswith("rediss")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    credentials = {
        "username": unquote(username) or None,
        "password": unquote(password) or None,
        "tls": tls,
    }
    if scheme in CLUSTER_SCHEMES:
        if segments:
            raise RedisUrlError(f"{redact(url)}: a cluster has only database 0; drop the path")
        return RedisTarget(
            "cluster",
            url,
            _hosts(authority, DEFAULT_PORT, url),
            **credentials,  # type: ignore[arg-type]
        )
    if not segments or len(segments) > 2:
        raise RedisUrlError(f"{redact(url)}: name the service: redis+sentinel://host:port/service")
    db = segments[1] if len(segments) == 2 else "0"
    if not db.isascii() or not db.isdigit():
        raise RedisUrlError(f"{redact(url)}: the database must be a number")
    sentinel_password = query.get("sentinel_password", [None])[0]
    return RedisTarget(
        "sentinel",
        url,
        _hosts(authority, DEFAULT_SENTINEL_PORT, url),
        service=segments[0],
        db=int(db),
        sentinel_password=sentinel_password,
        **credentials,  # type: ignore[arg-type]
    )


def with_password(url: str, password: str) -> str:
    """``url`` carrying ``password`` (for building URLs in tests and the demo)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://:{quote(password, safe='')}@{rest}"


class KnownNodes:
    """The cluster nodes a process knows of (those of the URL, then every node a discovery
    found) and the clients of that cluster. The clients of one URL share it: the first use of
    any of them discovers the cluster for all, so that none is left to discover it later, in
    the middle of an outage (redis-py's discovery asks a random node for the command table)."""

    def __init__(self, hosts: Sequence[tuple[str, int]]) -> None:
        self._names = [f"{host}:{port}" for host, port in hosts]
        self._clients: list[LazyCluster] = []
        self._lock = threading.Lock()

    def join(self, client: LazyCluster) -> None:
        """``client`` is one of this cluster's clients."""
        with self._lock:
            self._clients.append(client)

    def discover_others(self, asking: LazyCluster, avoid: Callable[[str], bool] | None) -> None:
        """Discover the cluster for every other client not yet discovered (a failure leaves
        that client to discover it on its own first use)."""
        with self._lock:
            others = [c for c in self._clients if c is not asking and not c.built]
        for other in others:
            try:
                other.discover(avoid, with_others=False)
            except (redis.RedisError, redis.exceptions.RedisClusterException, OSError):
                log.info("cluster discovery for a second client failed; it tries on first use")

    def learn(self, cluster: RedisCluster) -> None:
        """Remember every node ``cluster`` found."""
        with self._lock:
            for node in cluster.get_nodes():
                if node.name not in self._names:
                    self._names.append(node.name)

    def startup_nodes(self, avoid: Callable[[str], bool] | None = None) -> list[ClusterNode]:
        """The known nodes to discover the cluster from: those ``avoid`` names (a failed node)
        left out while any other is known (redis-py asks them in a random order)."""
        with self._lock:
            names = list(self._names)
        if avoid is not None:
            names = [name for name in names if not avoid(name)] or names
        nodes = []
        for name in names:
            host, _, port = name.rpartition(":")
            nodes.append(ClusterNode(host, int(port)))
        return nodes


class LazyCluster:
    """A RedisCluster built on first use (discovering the cluster is I/O), then used as is."""

    def __init__(
        self, build: Callable[[list[ClusterNode]], RedisCluster], known: KnownNodes
    ) -> None:
        self._build = build
        self.known = known
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        known.join(self)

    @property
    def cluster(self) -> RedisCluster:
        """The cluster client, discovering the cluster if this is its first use."""
        return self.discover()

    def discover(
        self, avoid: Callable[[str], bool] | None = None, *, with_others: bool = True
    ) -> RedisCluster:
        """The cluster client; the first time, discovered from the known nodes but those
        ``avoid`` names (nodes whose breaker is open), and then for the other clients of the
        cluster too (``with_others``)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build(self.known.startup_nodes(avoid))
                    self.known.learn(self._client)
                client = self._client
            if with_others:
                self.known.discover_others(self, avoid)
        return client

    @property
    def built(self) -> bool:
        """Whether the cluster was discovered already."""
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)


def cluster_of(client: Any) -> RedisCluster | None:
    """The RedisCluster behind ``client``, or None for a single Redis."""
    if isinstance(client, LazyCluster):
        return client.cluster
    if isinstance(client, RedisCluster):
        return client
    return None


def refresh_topology(client: Any) -> None:
    """Ask a cluster again which node serves which slots (after a node failed: a replica may
    have taken over). Nothing for a single Redis, or a cluster not discovered yet."""
    if isinstance(client, LazyCluster) and not client.built:
        return
    cluster = cluster_of(client)
    if cluster is not None:
        cluster.nodes_manager.initialize()


class TopologyRefresh:
    """Refreshes the slot maps of a few cluster clients in the background, one refresh at a
    time (a failed node asks for one every breaker window until a replica took over)."""

    def __init__(self, clients: Sequence[Any]) -> None:
        self.clients = tuple(clients)
        self._running = False
        self._lock = threading.Lock()

    def refresh_soon(self) -> None:
        """Start a refresh unless one is running."""
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._refresh, name="blanco-topology", daemon=True).start()

    def _refresh(self) -> None:
        try:
            for client in self.clients:
                try:
                    refresh_topology(client)
                except (redis.RedisError, redis.exceptions.RedisClusterException, OSError):
                    log.debug("cluster topology refresh failed; the next failure asks again")
        finally:
            with self._lock:
                self._running = False


def connect(
    target: RedisTarget,
    *,
    decode: bool,
    timeout: float,
    retries: int = 0,
    known: KnownNodes | None = None,
    **extra: Any,
) -> Any:
    """A client for ``target``. ``retries`` > 0 retries a failed call that many times with a
    short backoff (admin calls, jobs); the open path uses 0: the timeout and the circuit breaker
    bound its latency. Clients of one cluster share ``known`` nodes. ``extra`` options go to
    every connection (e.g. ``encoding_errors``)."""
    retry = (
        Retry(ExponentialBackoff(cap=0.5, base=0.05), retries) if retries else Retry(NoBackoff(), 0)
    )
    options: dict[str, Any] = {
        "decode_responses": decode,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        "retry": retry,
        **extra,
    }
    if target.kind == "single":
        return redis.Redis.from_url(target.url, **options)
    credentials: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.tls:
        credentials["ssl"] = True
    if target.kind == "cluster":

        def build(nodes: list[ClusterNode]) -> RedisCluster:
            return RedisCluster(
                startup_nodes=nodes,
                require_full_coverage=True,
                **options,
                **credentials,
            )

        return LazyCluster(build, known if known is not None else KnownNodes(target.hosts))
    sentinel_options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    sentinel = Sentinel(
        list(target.hosts), sentinel_kwargs=sentinel_options, **options, **credentials
    )
    assert target.service is not None
    return sentinel.master_for(target.service, db=target.db, **options, **credentials)
