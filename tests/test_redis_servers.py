"""The throwaway Redis topologies of ``tests/redis_servers.py``: one server that stops, dies,
restarts and pauses; a three-master cluster whose slots move (and stay half-moved) under a
``RedisCluster`` client; a Sentinel set-up that fails over under a ``master_for`` client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import AskError

from tests.redis_servers import (
    RedisClusterProcesses,
    RedisProcess,
    SentinelProcesses,
    no_retry,
)

pytestmark = pytest.mark.own_redis  # starts Redis servers of its own: not on the cluster pass

REPOSITORY = Path(__file__).parent.parent


@pytest.fixture
def cluster(redis_cluster: RedisClusterProcesses) -> Iterator[RedisClusterProcesses]:
    """The session's cluster, empty, with every slot back home afterwards."""
    home = redis_cluster.slot_map()
    redis_cluster.flushall()  # an earlier test's app may have written after its own flush
    yield redis_cluster
    redis_cluster.reset()
    assert redis_cluster.slot_map() == home


# one server


def test_a_server_stops_dies_and_restarts_on_its_port(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "kept", persistence=True, unix_socket=True)
    with server:
        port = server.port
        redis.Redis.from_url(server.unix_url).set("kept", "yes")
        server.restart()  # SHUTDOWN NOSAVE still writes the AOF
        assert server.port == port
        assert server.client().get("kept") == "yes"
        server.kill()
        assert not server.running
        with pytest.raises(redis.ConnectionError):
            server.client(retry=no_retry()).ping()
        server.restart()
        assert server.client().get("kept") == "yes"  # the AOF was written before the kill
    assert not server.running

    with RedisProcess(tmp_path / "forgetful") as forgetful:
        forgetful.client().set("gone", "soon")
        forgetful.restart()
        assert forgetful.client().get("gone") is None  # no persistence unless asked


def test_servers_left_running_are_killed_when_python_exits(tmp_path: Path) -> None:
    # a run that fails without stopping its server, in a Python of its own
    run = (
        "import sys; from pathlib import Path; from tests.redis_servers import RedisProcess; "
        "print(RedisProcess(Path(sys.argv[1])).start().port, flush=True); "
        "raise RuntimeError('a test failed')"
    )
    child = subprocess.run(
        [sys.executable, "-c", run, str(tmp_path)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "a test failed" in child.stderr
    port = int(child.stdout)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=1, retry=no_retry()).ping()


# Redis Cluster


def test_the_cluster_serves_keys_on_all_three_masters(cluster: RedisClusterProcesses) -> None:
    client = cluster.client()
    for node in cluster.nodes:
        key = cluster.key_in(node)
        client.set(key, node.port)
        assert cluster.node_for_key(key) is node
        assert node.client().get(key) == str(node.port)  # stored on that very node
    assert len({r.port for r in cluster.slot_map()}) == 3


def test_migrate_slot_moves_a_key_and_the_client_follows(cluster: RedisClusterProcesses) -> None:
    client = cluster.client()
    source = cluster.nodes[0]
    key = cluster.key_in(source)
    client.set(key, "moving")
    target = cluster.nodes[1]

    assert cluster.migrate_slot(cluster.keyslot(key), target) is source

    assert cluster.node_for_key(key) is target
    assert target.client().get(key) == "moving"
    slot = cluster.keyslot(key)
    assert source.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert client.get(key) == "moving"  # MOVED: the client learns the new owner
    client.set(key, "moved")
    assert target.client().get(key) == "moved"


def test_a_half_migrated_slot_answers_ask_and_the_client_follows(
    cluster: RedisClusterProcesses,
) -> None:
    client = cluster.client()
    source, target = cluster.nodes[0], cluster.nodes[2]
    tag = cluster.key_in(source, "tag")
    moved, stayed, new = f"{{{tag}}}:moved", f"{{{tag}}}:stayed", f"{{{tag}}}:new"
    client.set(moved, "there")
    client.set(stayed, "here")
    slot = cluster.keyslot(moved)

    cluster.start_slot_migration(slot, target, keys=[moved])

    with pytest.raises(AskError):
        source.client().get(moved)
    assert source.client().get(stayed) == "here"
    assert client.get(moved) == "there"  # ASKING on the target
    assert client.get(stayed) == "here"
    client.set(new, "written")  # a new key of a migrating slot goes to the target…
    assert cluster.node_for_key(new) is source  # …though the slot is still the source's
    with pytest.raises(AskError):
        source.client().get(new)  # the source has no such key
    cluster.finish_slot_migration(slot, target)
    assert target.client().mget(moved, stayed, new) == ["there", "here", "written"]
    assert [client.get(k) for k in (moved, stayed, new)] == ["there", "here", "written"]


def test_a_paused_node_delays_only_its_own_keys(cluster: RedisClusterProcesses) -> None:
    setup = cluster.client()
    paused, other = cluster.nodes[1], cluster.nodes[2]
    slow, quick = cluster.key_in(paused), cluster.key_in(other)
    setup.set(slow, "slow")
    setup.set(quick, "quick")
    impatient = cluster.client(socket_timeout=0.2, retry=no_retry())
    assert impatient.get(slow) == "slow"  # connections made before the pause

    cluster.pause_node(paused, 0.6)

    assert impatient.get(quick) == "quick"
    with pytest.raises(redis.TimeoutError):
        impatient.get(slow)
    assert paused.client(socket_timeout=5).get(slow) == "slow"  # answered once the pause ends


def test_reset_empties_the_cluster_and_brings_every_slot_home(
    redis_cluster: RedisClusterProcesses,
) -> None:
    home = redis_cluster.slot_map()
    client = redis_cluster.client()
    first, second = redis_cluster.nodes[0], redis_cluster.nodes[1]
    moved, half = redis_cluster.key_in(first, "moved"), redis_cluster.key_in(first, "half")
    client.mset_nonatomic({moved: "1", half: "2"})
    redis_cluster.migrate_slot(redis_cluster.keyslot(moved), second)
    redis_cluster.start_slot_migration(redis_cluster.keyslot(half), second, keys=[half])
    assert redis_cluster.slot_map() != home

    redis_cluster.reset()

    assert redis_cluster.slot_map() == home
    for node in redis_cluster.nodes:
        assert node.client().dbsize() == 0
        assert "[" not in node.client().execute_command("CLUSTER", "NODES")  # none migrating
    client.set(half, "usable")
    assert client.get(half) == "usable"
    client.delete(half)


# Sentinel


def test_the_session_sentinels_serve_the_primary_and_its_replica(
    redis_sentinel: SentinelProcesses,
) -> None:
    sentinel = redis_sentinel.client()
    primary = sentinel.master_for(redis_sentinel.service_name)
    primary.set("blanco:test:sentinel", "seen")
    assert primary.execute_command("WAIT", 1, 5000) == 1
    replica = sentinel.slave_for(redis_sentinel.service_name)
    assert replica.get("blanco:test:sentinel") == "seen"
    assert sentinel.discover_master(redis_sentinel.service_name) == redis_sentinel.primary.address
    primary.delete("blanco:test:sentinel")


def test_a_sentinel_client_writes_again_after_a_failover(tmp_path: Path) -> None:
    with SentinelProcesses(tmp_path) as sentinels:
        client = sentinels.client().master_for(sentinels.service_name)
        client.set("before", "kept")
        assert client.execute_command("WAIT", 1, 5000) == 1  # the replica has it

        killed = sentinels.kill_primary()
        promoted = sentinels.wait_for_failover()

        assert killed is sentinels.primary
        assert promoted is sentinels.replica
        client.set("after", "written")
        assert client.get("before") == "kept"
        assert promoted.client().get("after") == "written"
