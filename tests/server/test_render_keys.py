"""An open of content the worker has drawn already takes its render-cache key from memory
(``RenderKeys``) instead of building the render request and hashing it again."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from renderers.base import Renderer
from server.open.drawing import RenderKeys
from server.services import Services
from tests.factories import corner_color, hex_rgb, store_block, store_recipient, variant

PERSONAL = "#0B7A75"
GREETING = variant("hi", None, text="Hi {{ first_name }}", background=PERSONAL)


class KeyCount:
    """Counts the render-cache keys worked out (the real method still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Renderer.cache_key

        def counted(renderer: Any, params: Any, request: Any) -> str:
            self.calls += 1
            return original(renderer, params, request)

        monkeypatch.setattr(Renderer, "cache_key", counted)


def image(app: Flask, services: Services, recipient_id: str) -> Any:
    token = services.signer.sign(recipient_id)
    return app.test_client().get("/i/daily/hero.png", query_string={"r": token})


def test_a_reopen_is_served_without_hashing_the_render_again(
    app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    store_recipient(services, "bram", {"first_name": "Bram"})
    count = KeyCount(monkeypatch)
    first = image(app, services, "anna")
    assert count.calls == 1
    again = image(app, services, "anna")
    assert count.calls == 1  # the key came from memory
    assert (again.data, again.headers["ETag"]) == (first.data, first.headers["ETag"])
    other = image(app, services, "bram")  # other inputs: worked out, and drawn apart
    assert count.calls == 2
    assert other.headers["ETag"] != first.headers["ETag"]
    assert corner_color(other.data) == hex_rgb(PERSONAL)


def test_a_new_version_of_the_block_is_hashed_and_drawn_anew(
    app: Flask, services: Services
) -> None:
    store_block(services, [GREETING])
    store_recipient(services, "anna", {"first_name": "Anna"})
    first = image(app, services, "anna")
    store_block(
        services, [variant("hi", None, text="Hello {{ first_name }}", background="#112233")]
    )
    app.extensions["blanco.open"].config.refresh(force=True)
    changed = image(app, services, "anna")
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert corner_color(changed.data) == hex_rgb("#112233")


def test_values_that_are_equal_but_draw_apart_are_kept_apart() -> None:
    params = object()
    rest = (600, 200, None, None, 1, False)

    def inputs(value: Any) -> Any:
        return RenderKeys.inputs(params, ("n",), {"n": value}, {}, rest)

    assert len({inputs(1), inputs(True), inputs(1.0), inputs("1")}) == 4
    assert RenderKeys.inputs(params, ("n",), {}, {"n": 2}, rest) == inputs(2)  # extra wins
    assert RenderKeys.inputs(params, ("live",), {}, {"live": {"a": 1}}, rest) is None
    assert RenderKeys.inputs(params, None, {"n": 1}, {}, rest) is None


def test_the_memory_is_bounded() -> None:
    keys = RenderKeys(size=3)
    params = object()
    for n in range(10):
        keys.put(params, (n,), f"digest-{n}")
        assert len(keys) <= 3
    assert keys.get((9,)) == "digest-9"
    assert keys.get((8,)) is None


def test_another_params_object_never_gets_a_key_worked_out_for_one_before() -> None:
    keys = RenderKeys()
    rest = (600, 200, None, None, 1, False)
    first, second = object(), object()
    keys.put(first, RenderKeys.inputs(first, ("n",), {"n": 1}, {}, rest), "digest-first")
    assert keys.get(RenderKeys.inputs(first, ("n",), {"n": 1}, {}, rest)) == "digest-first"
    assert keys.get(RenderKeys.inputs(second, ("n",), {"n": 1}, {}, rest)) is None
