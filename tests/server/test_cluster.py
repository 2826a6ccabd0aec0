"""Blanco on a real three-primary Redis Cluster: one node per open, recipients on every node
personalised, a slot moved under an open, one node paused while the others serve, jobs that see
every node, and readiness that asks every primary."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis.cluster import RedisCluster

from models.campaigns.specs import CampaignSpec
from models.newsletter.audience_export import AudienceExport
from models.newsletter.sends import plan_send
from models.storage import keys
from models.storage.scan import TopologyChanged
from server.demo.data import DEMO_RECIPIENTS, load_demo
from server.services import Services, audience_export
from tests.factories import FakeClock, RoundTrips, landing, store_block, store_recipient, variant
from tests.newsletter_fixtures import newsletter_spec
from tests.redis_servers import RedisClusterProcesses, RedisProcess, free_port, wait_until

pytestmark = pytest.mark.own_redis  # brings its own cluster: the cluster pass leaves it out

HOT = "https://shop.example/hot"


@pytest.fixture
def cluster(redis_cluster: RedisClusterProcesses) -> Iterator[RedisClusterProcesses]:
    """The session's cluster, emptied, and put back home afterwards (slots may be moved)."""
    redis_cluster.reset()
    yield redis_cluster
    redis_cluster.reset()


@pytest.fixture
def cluster_app(make_app: Callable[..., Flask], cluster: RedisClusterProcesses) -> Flask:
    """An app on the cluster that checks its configuration only when told (warm caches stay
    warm: an open then reads only its recipient)."""
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster.ports)
    return make_app(redis_url=url, config_check_seconds=3600, redis_timeout_seconds=0.5)


def services_of(app: Flask) -> Services:
    found: Services = app.extensions["blanco"]
    return found


def recipient_on(cluster: RedisClusterProcesses, node: RedisProcess, prefix: str = "r") -> str:
    """A recipient id whose keys live on ``node``."""
    for number in range(10_000):
        rid = f"{prefix}{number}"
        if cluster.node_for_key(keys.profile(rid)) is node:
            return rid
    raise AssertionError("no recipient id found for the node")


def image(app: Flask, rid: str) -> Any:
    token = services_of(app).signer.sign(rid)
    return app.test_client().get("/i/daily/hero.png", query_string={"r": token})


def refresh_config(app: Flask) -> None:
    app.extensions["blanco.open"].config.refresh(force=True)


@pytest.fixture
def targeted(cluster_app: Flask, cluster: RedisClusterProcesses) -> dict[int, str]:
    """A block that shows 'hot' to recipients with p ≥ 0.5, and one such recipient per node
    (by port)."""
    services = services_of(cluster_app)
    store_block(services, [variant("hot", {"score": "p", "gte": 0.5}, background="#CC0000")])
    chosen = {}
    for node in cluster.nodes:
        rid = recipient_on(cluster, node)
        store_recipient(services, rid, scores={"p": 0.9})
        chosen[node.port] = rid
    refresh_config(cluster_app)
    return chosen


def test_each_open_is_one_round_trip_to_one_node(
    targeted: dict[int, str],
    cluster_app: Flask,
    cluster: RedisClusterProcesses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = cluster_app.extensions["blanco.open"]
    core.recorder.background = True  # as served: the record is written by another thread
    for port, rid in targeted.items():
        warm = image(cluster_app, rid)  # the render and the configuration are now held
        assert "X-Blanco-Fallback" not in warm.headers
        trips = RoundTrips(monkeypatch)
        answer = image(cluster_app, rid)
        monkeypatch.undo()
        assert "X-Blanco-Fallback" not in answer.headers
        assert trips.sent == {f"127.0.0.1:{port}": 1}, trips.sent
    assert core.recorder.flush(timeout=5)


def test_demo_recipients_on_every_node_are_personalised(
    cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    services = services_of(cluster_app)
    links = load_demo(services)
    refresh_config(cluster_app)
    nodes = {cluster.node_for_key(keys.profile(rid)).port for rid, _, _ in DEMO_RECIPIENTS}
    assert nodes == set(cluster.ports)
    client = cluster_app.test_client()
    for link in links:
        shown = client.get(link.image_url.removeprefix(services.settings.public_url))
        assert shown.status_code == 200
        clicked = client.get(link.click_url.removeprefix(services.settings.public_url))
        decision = services.redis.hget(keys.decisions(link.recipient_id), "daily/hero")
        assert decision is not None
        block = services.campaigns.require_block("daily", "hero")
        if link.recipient_id == "eva":  # the demo targets her with no variant
            assert shown.headers["X-Blanco-Fallback"] == "no variant matched"
            assert landing(clicked) == block.fallback.target_url
        else:
            assert "X-Blanco-Fallback" not in shown.headers, link.recipient_id
            assert '"v": null' not in decision
            assert landing(clicked) != block.fallback.target_url


def test_a_slot_moved_under_the_opens_leaves_them_personalised(
    targeted: dict[int, str], cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    rid = targeted[cluster.ports[0]]
    assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers
    slot = keys.recipient_slot(rid)
    source = cluster.owner(slot)
    target = next(node for node in cluster.nodes if node is not source)
    half_moved = [keys.profile(rid)]  # its scores stay behind: reading them takes an ASK
    cluster.start_slot_migration(slot, target, half_moved)
    assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers
    cluster.finish_slot_migration(slot, target)
    assert cluster.owner(slot) is target
    answer = image(cluster_app, rid)  # the client's map still says source: MOVED
    assert "X-Blanco-Fallback" not in answer.headers
    token = services_of(cluster_app).signer.sign(rid)
    click = cluster_app.test_client().get("/c/daily/hero", query_string={"r": token})
    assert landing(click) == HOT


def test_a_paused_node_leaves_recipients_on_the_others_personalised(
    targeted: dict[int, str], cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    for rid in targeted.values():  # warm the render and configuration caches
        assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers
    paused = cluster.nodes[0]
    cluster.pause_node(paused, 2.0)
    started = time.monotonic()
    timings: dict[str, tuple[float, Any]] = {}
    for _ in range(3):
        for port, rid in targeted.items():
            began = time.monotonic()
            answer = image(cluster_app, rid)
            timings.setdefault(f"{port}:{rid}", (time.monotonic() - began, answer.headers))
            if port != paused.port:
                assert "X-Blanco-Fallback" not in answer.headers
                assert time.monotonic() - began < 0.5
            else:
                assert answer.headers["X-Blanco-Fallback"].startswith("redis")
                assert time.monotonic() - began < 0.5 + 0.3  # the timeout, then the breaker
    assert time.monotonic() - started < 2.0, "the pause ended before the checks did"


def test_the_export_and_segmentation_count_every_recipient_on_every_node(
    cluster_app: Flask, cluster: RedisClusterProcesses, clock: FakeClock
) -> None:
    services = services_of(cluster_app)
    store_block(services, [variant("hot")])
    rids = [f"member-{n}" for n in range(60)]
    for rid in rids:
        store_recipient(services, rid, {"first_name": "X", "consent_email": True})
    assert {cluster.node_for_key(keys.profile(rid)).port for rid in rids} == set(cluster.ports)
    newsletter, _ = services.newsletters.put("daily", newsletter_spec(holdout=0))
    send = plan_send(newsletter, None, clock())
    rows = list(audience_export(services).rows(newsletter, send, clock()))
    assert sorted(r["recipient_id"] for r in rows) == sorted(rids)
    recorded = services.sends.require("daily", send.id)
    assert (recorded.status, recorded.counts.considered) == ("exported", 60)
    report = services.segmentation.run(clock())
    assert report.recipients == 60


def test_an_export_fails_loudly_while_a_slot_is_migrating(
    cluster_app: Flask, cluster: RedisClusterProcesses, clock: FakeClock
) -> None:
    services = services_of(cluster_app)
    store_block(services, [variant("hot")])
    for n in range(20):
        store_recipient(services, f"member-{n}", {"consent_email": True})
    newsletter, _ = services.newsletters.put("daily", newsletter_spec(holdout=0))
    slot = keys.recipient_slot("member-0")
    source = cluster.owner(slot)
    cluster.start_slot_migration(
        slot, next(n for n in cluster.nodes if n is not source), [keys.profile("member-0")]
    )
    send = plan_send(newsletter, None, clock())
    export: AudienceExport = audience_export(services)
    with pytest.raises(TopologyChanged):
        list(export.rows(newsletter, send, clock()))
    assert services.sends.require("daily", send.id).status == "failed"
    with pytest.raises(TopologyChanged):
        services.segmentation.run(clock())


def test_readiness_asks_every_primary(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    with RedisClusterProcesses(tmp_path / "own-cluster") as own:
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in own.ports)
        app = make_app(redis_url=url, redis_timeout_seconds=0.3)
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["cluster_state"] == "ok"
        assert len(ready.get_json()["nodes"]) == 3
        own.nodes[2].kill()
        down = app.test_client().get("/readyz")
        assert down.status_code == 503
        nodes = down.get_json()["nodes"]
        assert nodes[f"127.0.0.1:{own.nodes[2].port}"] != "ok"
        assert sum(state == "ok" for state in nodes.values()) == 2


# Review: where one node's trouble, or a change of topology, still reaches other recipients


def test_a_paused_node_leaves_bandit_opens_on_the_other_nodes_personalised(
    cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    services = services_of(cluster_app)
    store_block(
        services,
        [variant("a", background="#CC0000"), variant("b", background="#00AA00")],
        experiment={"mode": "bandit"},
    )
    paused = cluster.node_for_key(keys.arm_counts("daily", "experiment", 0))  # a totals shard
    others = [recipient_on(cluster, node) for node in cluster.nodes if node is not paused]
    for rid in others:
        store_recipient(services, rid)
    refresh_config(cluster_app)
    config = cluster_app.extensions["blanco.open"].config
    config.campaign_and_block("daily", "hero")  # the configuration and live sources are held:
    config.live()  # an open now reads only its recipient's node, and the bandit's totals
    cluster.pause_node(paused, 3.0)
    for rid in others:  # their own node answers; only the bandit's totals live elsewhere
        assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers


def test_a_paused_configuration_node_leaves_opens_on_the_other_nodes_personalised(
    targeted: dict[int, str], cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    for rid in targeted.values():  # the block is held by the worker
        assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers
    services = services_of(cluster_app)
    services.campaigns.create_campaign(CampaignSpec(id="other"))  # any configuration write
    refresh_config(cluster_app)  # every held entry is now stale: re-read on next use
    holder = cluster.node_for_key(keys.campaign("daily"))
    cluster.pause_node(holder, 2.0)
    for port, rid in targeted.items():
        if port != holder.port:  # the stale block beats a fallback for a healthy recipient
            assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers


def test_an_open_follows_a_moved_and_then_an_ask(
    targeted: dict[int, str], cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    rid = targeted[cluster.ports[0]]
    assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers  # the map says node 0
    slot = keys.recipient_slot(rid)
    _, second, third = cluster.nodes
    cluster.migrate_slot(slot, second)  # node 0 answers MOVED to node 1 …
    cluster.start_slot_migration(slot, third, [keys.profile(rid)])  # … which answers ASK to 2
    answer = image(cluster_app, rid)
    assert answer.headers.get("X-Blanco-Fallback") is None, answer.headers["X-Blanco-Fallback"]


CLUSTER_NODE_CONFIG = [
    "cluster-enabled yes",
    "cluster-config-file nodes.conf",
    "cluster-node-timeout 5000",
    "cluster-require-full-coverage yes",
]


def _cluster_url(cluster: RedisClusterProcesses) -> str:
    return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster.ports)


def _join(cluster: RedisClusterProcesses, node: RedisProcess) -> None:
    """Introduce a started cluster node to the cluster and wait until every node knows every
    other and calls the cluster ok (a ``SETSLOT … NODE`` naming a node one member has not yet
    heard of fails with "Unknown node")."""
    control = cluster.nodes[0].client()
    try:
        control.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
    finally:
        control.close()
    members = [*cluster.nodes, node]
    ids = [cluster.node_id(member) for member in members]

    def knows_everyone(member: RedisProcess) -> bool:
        client = member.client()
        try:
            text = str(client.execute_command("CLUSTER", "NODES"))
            state = str(client.execute_command("CLUSTER", "INFO"))
        finally:
            client.close()
        met = all(f"{i} " in text for i in ids) and "handshake" not in text
        return met and "cluster_state:ok" in state

    wait_until(
        lambda: all(knows_everyone(member) for member in members),
        10.0,
        "every node to meet the new one",
    )


def test_opens_and_readiness_recover_when_a_replica_takes_over_a_dead_primary(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with (
        RedisClusterProcesses(tmp_path / "failover") as own,
        RedisProcess(
            tmp_path / "failover" / "replica", config=CLUSTER_NODE_CONFIG, cluster_bus=True
        ) as replica,
    ):
        _join(own, replica)
        primary = own.nodes[0]
        control = replica.client()
        control.execute_command("CLUSTER", "REPLICATE", own.node_id(primary))
        wait_until(
            lambda: control.info("replication").get("master_link_status") == "up",
            10.0,
            "the replica to sync",
        )
        app = make_app(
            redis_url=_cluster_url(own),
            config_check_seconds=3600,
            redis_timeout_seconds=0.3,
            redis_retry_after_seconds=0.05,
        )
        services = services_of(app)
        store_block(services, [variant("hot", {"score": "p", "gte": 0.5})])
        rid = next(
            f"r{n}" for n in range(10_000) if own.owner(keys.recipient_slot(f"r{n}")) is primary
        )
        store_recipient(services, rid, scores={"p": 0.9})
        refresh_config(app)
        assert "X-Blanco-Fallback" not in image(app, rid).headers
        written = primary.client()
        wait_until(
            lambda: control.dbsize() == written.dbsize(),
            10.0,
            "the replica to hold the primary's keys",
        )
        written.close()
        primary.kill()
        control.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        survivor = own.nodes[1]
        wait_until(
            lambda: (
                any(
                    keys.recipient_slot(rid) in r and r.port == replica.port
                    for r in own.slot_map(survivor)
                )
                or None
            ),
            10.0,
            "the cluster to hand the slot to the replica",
        )
        control.close()
        fresh = RedisCluster(host="127.0.0.1", port=survivor.port)
        assert fresh.hget(keys.scores(rid), "p")  # a client that asks now finds the recipient
        fresh.close()
        deadline = time.monotonic() + 3.0
        answer = image(app, rid)
        while "X-Blanco-Fallback" in answer.headers and time.monotonic() < deadline:
            answer = image(app, rid)  # each failure opens a 50 ms window; then one probe
        assert "X-Blanco-Fallback" not in answer.headers, answer.headers["X-Blanco-Fallback"]
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200, ready.get_json()


def test_an_export_counts_the_recipients_of_a_primary_added_while_the_server_runs(
    make_app: Callable[..., Flask], tmp_path: Path, clock: FakeClock
) -> None:
    with (
        RedisClusterProcesses(tmp_path / "growing") as own,
        RedisProcess(
            tmp_path / "growing" / "newcomer", config=CLUSTER_NODE_CONFIG, cluster_bus=True
        ) as newcomer,
    ):
        app = make_app(redis_url=_cluster_url(own))
        services = services_of(app)
        store_block(services, [variant("hot")])
        rids = [f"member-{n}" for n in range(30)]
        for rid in rids:
            store_recipient(services, rid, {"first_name": "X", "consent_email": True})
        newsletter, _ = services.newsletters.put("daily", newsletter_spec(holdout=0))
        # the server met three primaries; a fourth joins and takes one recipient's slot
        _join(own, newcomer)
        own.nodes.append(newcomer)
        own.migrate_slot(keys.recipient_slot("member-0"), newcomer)
        send = plan_send(newsletter, None, clock())
        rows = list(audience_export(services).rows(newsletter, send, clock()))
        assert sorted(r["recipient_id"] for r in rows) == sorted(rids)


class Blackhole:
    """A TCP port that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.server.accept()
                self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


def test_an_unreachable_cluster_is_skipped_after_the_first_failure(
    make_app: Callable[..., Flask],
) -> None:
    hole = Blackhole()
    try:
        app = make_app(
            redis_url=f"redis+cluster://127.0.0.1:{hole.port}", redis_timeout_seconds=0.2
        )
        for _ in range(3):  # within the breaker's 1 s window
            assert image(app, "anna").status_code == 200
        assert len(hole.accepted) <= 2, f"{len(hole.accepted)} connections, each a 0.2 s wait"
    finally:
        hole.close()


def test_the_api_answers_503_when_the_cluster_cannot_be_reached(
    make_app: Callable[..., Flask],
) -> None:
    """Review: discovering a cluster fails with RedisClusterException, which is no RedisError,
    so the admin and channel APIs answer a generic 500 instead of 503 with Retry-After."""
    app = make_app(redis_url=f"redis+cluster://127.0.0.1:{free_port()}")
    client = app.test_client()
    bearer = {"Authorization": "Bearer blk_unknown_key"}
    for path in ("/api/v1/campaigns", "/x/v1/campaigns/daily/blocks/hero/decision"):
        answer = client.get(path, headers=bearer)
        assert answer.status_code == 503, (path, answer.get_json())
        assert answer.headers["Retry-After"]


def test_under_continuous_load_a_paused_node_costs_only_its_own_recipients(
    targeted: dict[int, str], cluster_app: Flask, cluster: RedisClusterProcesses
) -> None:
    in_flight, recovery = 0.6, 2.0  # a probe's timeout and a breaker window, with slack
    for rid in targeted.values():  # warm the render and configuration caches
        assert "X-Blanco-Fallback" not in image(cluster_app, rid).headers
    answers: list[tuple[float, int, int, bool]] = []  # (asked, node port, status, personal)
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for port, rid in targeted.items():
                asked = time.monotonic()
                answer = image(cluster_app, rid)
                with lock:
                    personal = "X-Blanco-Fallback" not in answer.headers
                    answers.append((asked, port, answer.status_code, personal))

    paused = cluster.nodes[0]
    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        pause_started = time.monotonic()
        cluster.pause_node(paused, 2.5)
        pause_ended = pause_started + 2.5
        time.sleep(2.5 + recovery + 3.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)

    assert all(status == 200 for _, _, status, _ in answers)
    others = [a for a in answers if a[1] != paused.port]
    assert all(personal for _, _, _, personal in others), "other nodes' recipients stay personal"
    own = [a for a in answers if a[1] == paused.port]
    during = [a for a in own if pause_started + in_flight <= a[0] < pause_ended - in_flight]
    assert during
    assert not any(personal for _, _, _, personal in during)
    after = [a for a in own if a[0] >= pause_ended + recovery]
    assert len(after) >= 3, sorted(round(a[0] - pause_ended, 2) for a in own)[-10:]
    assert all(personal for _, _, _, personal in after), "its recipients come back"
