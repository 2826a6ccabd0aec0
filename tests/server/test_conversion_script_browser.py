"""The shop's conversion script in headless Chromium: the landing page keeps the click's token
in a first-party cookie of the shop, and the thank-you page sends the order with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask

from models.storage import keys
from tests.browser import free_port, run_chromium, serve_app, serve_wsgi
from tests.factories import store_block, store_recipient, variant
from tests.user_agents import BROWSER


def shop_pages(blanco: str) -> Callable[..., Any]:
    """A shop: every page includes Blanco's script; the landing page moves on to the
    thank-you page (without the token in its URL), which reports the order."""
    script = f'<script src="{blanco}/cv.js"></script>'
    pages = {
        "/landing": f"<html><body>{script}<script>location.href = '/thanks';</script>"
        "</body></html>",
        "/thanks": f"<html><head><title>-</title></head><body>{script}<script>"
        "document.title = blanco.conversion({order_id: 'o-77', amount: '42.50', "
        "currency: 'EUR', items: ['lisbon', 'crete']}) ? 'sent' : 'no token';"
        "</script></body></html>",
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        page = pages.get(environ["PATH_INFO"])
        status = "200 OK" if page else "404 Not Found"
        start_response(status, [("Content-Type", "text/html; charset=utf-8")])
        return [(page or "").encode()]

    return app


def test_the_thank_you_page_reports_the_order_with_the_landing_pages_token(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with serve_app(make_app) as (blanco, services):
        store_block(services, [variant("hot")])
        store_recipient(services, "anna")
        clicked = (
            make_app()
            .test_client()
            .get("/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER)
        )
        token = parse_qs(urlsplit(clicked.headers["Location"]).query)["bl_click"][0]
        shop_port = free_port()
        with serve_wsgi(shop_pages(blanco), shop_port):
            landing = f"http://localhost:{shop_port}/landing?bl_click={token}"
            dom = run_chromium(
                tmp_path, landing, "--dump-dom", "--virtual-time-budget=5000"
            ).stdout.decode()
            assert "<title>sent</title>" in dom
            deadline = time.monotonic() + 10
            while not services.redis.hexists(keys.transactions("anna"), "o-77"):
                assert time.monotonic() < deadline, "the order never reached Blanco"
                time.sleep(0.05)
        listed = services.customer_data.transactions("anna")
        assert [(t.order_id, str(t.amount), [i.id for i in t.items]) for t in listed] == [
            ("o-77", "42.50", ["lisbon", "crete"])
        ]
        attribution = services.redis.hget(keys.attributions("anna"), "o-77")
        assert attribution is not None
        assert '"basis": "click"' in attribution
