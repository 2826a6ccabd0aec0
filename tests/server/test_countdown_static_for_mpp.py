"""A static "Ends Sunday 23:59" for Apple MPP's prefetch, a ticking timer for everyone else.

Renderers do not see the client class; the open path does, and a variant conditioned on
``{"client": ["apple_mpp"]}`` carries the static display. End to end through the image route.
"""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient
from PIL import Image, ImageChops, ImageSequence
from werkzeug.test import TestResponse

from renderers.base import RenderRequest
from renderers.countdown import RENDERER, CountdownParams
from server.services import Services
from tests.factories import FakeClock, store_block, store_recipient

APPLE_MPP = "Mozilla/5.0"
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
WEEKLY = {"time": "23:59", "weekdays": ["sun"]}


def timer(display: str) -> dict[str, Any]:
    """A weekly Sunday 23:59 countdown in Amsterdam time."""
    return {
        "type": "countdown",
        "recurring": WEEKLY,
        "time_zone": "Europe/Amsterdam",
        "display": display,
    }


def variants() -> list[dict[str, Any]]:
    """The static text for Apple's prefetch first, the timer for every other client."""
    return [
        {
            "id": "prefetch",
            "priority": 10,
            "when": {"client": ["apple_mpp"]},
            "content": timer("static"),
            "target_url": "https://shop.example/sale",
        },
        {
            "id": "ticking",
            "content": timer("timer"),
            "target_url": "https://shop.example/sale",
        },
    ]


def open_as(client: FlaskClient, services: Services, user_agent: str) -> TestResponse:
    """Anna's image, fetched with ``user_agent``."""
    token = services.signer.sign("anna")
    response = client.get(
        "/i/daily/hero.gif", query_string={"r": token}, headers={"User-Agent": user_agent}
    )
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    return response


def frames(body: bytes) -> list[Image.Image]:
    """Every frame of a GIF as RGB."""
    with Image.open(io.BytesIO(body)) as gif:
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]


def test_apple_mpp_gets_the_static_text_and_a_reader_the_timer(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    store_block(services, variants())
    store_recipient(services, "anna")

    prefetched = open_as(client, services, APPLE_MPP)
    read = open_as(client, services, IPHONE_MAIL)

    static = frames(prefetched.data)
    assert len(static) == 1
    expected = RENDERER.render(
        CountdownParams.model_validate(timer("static")),
        RenderRequest(width=300, height=100, moment=clock.now),
    ).convert("RGB")
    assert ImageChops.difference(static[0], expected).getbbox() is None
    ticking = frames(read.data)
    assert len(ticking) == 60
    assert ImageChops.difference(ticking[0], static[0]).getbbox() is not None
