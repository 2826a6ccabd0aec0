"""The web view in headless Chromium (Debian's ``chromium``), as a reader sees it: the same
items as the slot images, and a layout guarded by reference screenshots."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image

from server.services import Services
from tests.browser import run_chromium, serve_app
from tests.factories import landing, store_block, store_recipient, variant
from tests.newsletter_fixtures import item, slot_url, store_newsletter
from tests.renderers.reference import assert_matches_reference
from tests.sample_images import image_bytes

SEND = "2026-11-23"


class Titles(HTMLParser):
    """The item titles of the rendered page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self._in_title = True

    def handle_data(self, data: str) -> None:
        if self._in_title and data.strip():
            self.titles.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_title = False


@pytest.fixture
def served(make_app: Callable[..., Flask]) -> Iterator[tuple[str, Services]]:
    """The app on a real local HTTP server, so the browser fetches the images too."""
    with serve_app(make_app) as found:
        yield found


def newsletter(services: Services) -> None:
    pictures = {}
    for name, color in (("lisbon", "#E69138"), ("crete", "#6FA8DC"), ("alps", "#CFE2F3")):
        asset, _ = services.assets.put(image_bytes("PNG", (400, 300), color))
        pictures[name] = asset.id
    hero = variant("hello", {"attr": "first_name", "exists": True})
    greeting = '<div class="greeting"><h1>Hello {{ first_name }}</h1></div>'
    store_block(services, [{**hero, "html": {"source": greeting}}])
    store_newsletter(
        services,
        [
            item("lisbon", "city_trip", image_asset=pictures["lisbon"], price=289, badge="-17%"),
            item("crete", "beach", image_asset=pictures["crete"], price=649),
            item("alps", "ski", image_asset=pictures["alps"], text="Six days, pass included"),
        ],
        slots=3,
        blocks=["hero"],
    )
    store_recipient(
        services,
        "anna",
        {"first_name": "Anna", "consent_email": True},
        {"affinity:beach": 0.9, "affinity:city_trip": 0.5, "affinity:ski": 0.1},
    )


def test_the_browser_shows_the_items_of_the_slot_images(
    served: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = served
    newsletter(services)
    url = f"{base}/v/daily?r={services.signer.sign('anna')}&s={SEND}"
    dom = run_chromium(tmp_path, url, "--dump-dom").stdout.decode()
    parser = Titles()
    parser.feed(dom)
    assert parser.titles == ["Trip crete", "Trip lisbon", "Trip alps"]

    # the email's slot links, followed afterwards, go to the same items
    opener = urllib.request.build_opener(NoRedirect)
    for number, expected in enumerate(("crete", "lisbon", "alps"), start=1):
        click = base + slot_url(services, "anna", number, SEND).replace(".png", "")
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(click, timeout=10)
        assert redirect.value.code == 302
        assert landing(redirect.value) == f"https://shop.example/items/{expected}"
        redirect.value.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.parametrize(("width", "name"), [(800, "desktop"), (375, "mobile")])
def test_the_layout_matches_its_reference(
    served: tuple[str, Services], tmp_path: Path, width: int, name: str
) -> None:
    base, services = served
    newsletter(services)
    url = f"{base}/v/daily?r={services.signer.sign('anna')}&s={SEND}"
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, url, f"--screenshot={shot}", f"--window-size={width},1100")
    with Image.open(io.BytesIO(shot.read_bytes())) as image:
        assert image.size == (width, 1100)
        assert_matches_reference(image.convert("RGB"), f"webview_{name}")
