"""Redis stopped mid-test: open-time routes keep answering with fallbacks, never 5xx."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from server.embedded_redis import EmbeddedRedis
from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    corner_color,
    decode_image,
    hex_rgb,
    landing,
    store_block,
    store_recipient,
    variant,
)

pytestmark = pytest.mark.own_redis  # starts Redis servers of its own: not on the cluster pass


def test_redis_stopped_mid_test(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "own-redis")
    url = embedded.start()
    try:
        app = make_app(redis_url=url, redis_timeout_seconds=0.2)
        services: Services = app.extensions["blanco"]
        store_block(services, [variant("hot", {"score": "p", "gte": 0.5}, background="#CC0000")])
        store_recipient(services, "anna", scores={"p": 0.9})
        client = app.test_client()
        token = services.signer.sign("anna")
        before = client.get("/i/daily/hero.png", query_string={"r": token})
        assert corner_color(before.data) == hex_rgb("#CC0000")
    finally:
        embedded.stop()
    assert not embedded.running

    during = client.get("/i/daily/hero.png", query_string={"r": token})
    assert during.status_code == 200
    assert during.mimetype == "image/png"
    assert decode_image(during.data).size == (300, 100)
    assert corner_color(during.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert during.headers["X-Blanco-Fallback"].startswith("redis")

    redirect = client.get("/c/daily/hero", query_string={"r": token})
    assert redirect.status_code == 302
    assert landing(redirect) == FALLBACK_URL

    never_seen = client.get("/i/other/block.png", query_string={"r": token})
    assert never_seen.status_code == 200
    decode_image(never_seen.data)
    assert client.get("/c/other/block").status_code == 302
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
