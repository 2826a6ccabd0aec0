"""Blanco on a primary that Sentinel names: the open path and the admin API work through
``redis+sentinel://``, and a failover (the primary killed under continuous opens) loses no
configuration and personalisation comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.services import Services
from tests.factories import block, landing, variant
from tests.redis_servers import SentinelProcesses

pytestmark = pytest.mark.own_redis  # brings its own Sentinel set-up: the cluster pass leaves it out

HOT = "https://shop.example/hot"


def sentinel_url(sentinel: SentinelProcesses) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinel_addresses)
    return f"redis+sentinel://{hosts}/{sentinel.service_name}"


def configure(client: FlaskClient, headers: dict[str, str]) -> None:
    """A campaign, a block that shows 'hot' to p ≥ 0.5, and anna with p = 0.9, by the API."""
    hot = variant("hot", {"score": "p", "gte": 0.5}, background="#CC0000")
    writes = [
        ("POST", "/api/v1/campaigns", {"id": "daily"}, 201),
        ("POST", "/api/v1/campaigns/daily/blocks", block(variants=[hot]), 201),
        ("PUT", "/api/v1/recipients/anna/profile", {"attributes": {"first_name": "Anna"}}, 200),
        (
            "PUT",
            "/api/v1/recipients/anna/scores",
            {"computed_at": "2026-11-23T06:00:00Z", "scores": {"p": 0.9}},
            200,
        ),
    ]
    for method, path, body, status in writes:
        assert client.open(path, method=method, json=body, headers=headers).status_code == status


def admin_headers(app: Flask) -> dict[str, str]:
    services: Services = app.extensions["blanco"]
    _, key = services.api_keys.create("tests", ["admin"])
    return {"Authorization": f"Bearer {key}"}


def personalised(app: Flask) -> bool:
    services: Services = app.extensions["blanco"]
    query = {"r": services.signer.sign("anna")}
    answer = app.test_client().get("/i/daily/hero.png", query_string=query)
    assert answer.status_code == 200
    return "X-Blanco-Fallback" not in answer.headers


def test_the_open_path_and_the_admin_api_work_through_sentinel(
    make_app: Callable[..., Flask], redis_sentinel: SentinelProcesses
) -> None:
    app = make_app(redis_url=sentinel_url(redis_sentinel))
    redis_sentinel.client().master_for(redis_sentinel.service_name).flushall()
    headers = admin_headers(app)
    client = app.test_client()
    configure(client, headers)
    assert personalised(app)
    services: Services = app.extensions["blanco"]
    click = client.get("/c/daily/hero", query_string={"r": services.signer.sign("anna")})
    assert landing(click) == HOT
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/v1/campaigns/daily/blocks/hero", headers=headers).status_code == 200


def test_a_failover_loses_no_configuration_and_opens_recover(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with SentinelProcesses(tmp_path / "sentinel") as sentinel:
        app = make_app(redis_url=sentinel_url(sentinel), redis_timeout_seconds=0.3)
        headers = admin_headers(app)
        client = app.test_client()
        configure(client, headers)
        primary = sentinel.client().master_for(sentinel.service_name)
        assert primary.execute_command("WAIT", 1, 5000) == 1  # the replica has it all
        assert personalised(app)

        answers: list[tuple[float, bool]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                answers.append((time.monotonic(), personalised(app)))

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            time.sleep(0.3)
            sentinel.kill_primary()
            sentinel.wait_for_failover()
            promoted = time.monotonic()
            deadline = promoted + 10
            while time.monotonic() < deadline and not (answers and answers[-1][1]):
                time.sleep(0.05)
            time.sleep(1.0)
        finally:
            stop.set()
            worker.join(timeout=10)

        back = [ok for at, ok in answers if at > promoted]
        assert back, "no opens after the failover"
        first = next(index for index, ok in enumerate(back) if ok)
        assert all(back[first + 5 :]), "personalisation fell back again after it returned"
        assert any(not ok for at, ok in answers), "the outage was never seen"
        block = client.get("/api/v1/campaigns/daily/blocks/hero", headers=headers)
        assert block.status_code == 200
        assert block.get_json()["variants"][0]["id"] == "hot"
        profile = client.get("/api/v1/recipients/anna/profile", headers=headers)
        assert profile.get_json()["attributes"]["first_name"] == "Anna"
