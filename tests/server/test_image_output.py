"""What the image route answers, format by format (docs/renderers.md, "Output" and "Headers"):
PNG at compression level 1 by default, the format a content names, WebP for ``"auto"`` only
when ``Accept`` names it (GIF for countdowns) and else JPEG for a photograph, pixels scaled by
``?dpr=``, an extension in the URL that changes nothing, the headers of personal and generic
images, never a redirect, and a 1×1 PNG when not even the block's fallback can be drawn."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image

from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    banner,
    corner_color,
    decode_image,
    hex_rgb,
    store_block,
    store_recipient,
    variant,
)
from tests.sample_images import photo

WEBP_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"
PNG_ACCEPT = "image/png,image/*;q=0.8"
SIGNATURES = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "gif": b"GIF8",
    "webp": b"RIFF",
}


def format_of(body: bytes) -> str:
    """The image format of ``body``, by its signature (and decoded, to be sure it is one)."""
    decode_image(body)
    found = [name for name, magic in SIGNATURES.items() if body.startswith(magic)]
    assert len(found) == 1, body[:12]
    if found[0] == "webp":
        assert body[8:12] == b"WEBP"
    return found[0]


def zlib_levels(png: bytes) -> set[int]:
    """The FLEVEL field of the zlib stream in a PNG's image data: 0 is the fastest level
    (what Pillow's ``compress_level=1`` writes), 3 the slowest (levels 7 to 9)."""
    position = 8
    levels: set[int] = set()
    first_idat = True
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT" and first_idat:
            header = png[position + 8 : position + 10]
            assert header[0] & 0x0F == 8, "deflate"
            levels.add(header[1] >> 6)
            first_idat = False
        position += 12 + length
    return levels


def personal_block(services: Services, **content: Any) -> None:
    """A block that shows anna a personal banner with ``content`` settings."""
    hot = variant("hot", {"segment": "vip"}, background="#CC0000")
    hot["content"] = {**hot["content"], **content}
    store_block(services, [hot])
    store_recipient(services, "anna", {"first_name": "Anna"}, segments=["vip"])


def open_image(
    client: FlaskClient,
    services: Services,
    accept: str | None = None,
    path: str = "/i/daily/hero.png",
    **query: str,
) -> Any:
    headers = {"Accept": accept} if accept else {}
    token = services.signer.sign("anna")
    return client.get(path, query_string={"r": token, **query}, headers=headers)


def test_png_at_the_fastest_compression_by_default(client: FlaskClient, services: Services) -> None:
    personal_block(services)
    for accept in (None, PNG_ACCEPT, "*/*"):
        response = open_image(client, services, accept)
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert format_of(response.data) == "png"
        assert zlib_levels(response.data) == {0}  # level 1, never 9
        assert corner_color(response.data) == hex_rgb("#CC0000")


def test_auto_is_webp_only_when_accept_names_it(client: FlaskClient, services: Services) -> None:
    personal_block(services)
    webp = open_image(client, services, WEBP_ACCEPT)
    assert webp.mimetype == "image/webp"
    assert format_of(webp.data) == "webp"
    assert webp.headers["Vary"] == "Accept"
    png = open_image(client, services, PNG_ACCEPT)
    assert png.mimetype == "image/png"
    assert png.headers["Vary"] == "Accept"
    assert webp.headers["ETag"] != png.headers["ETag"]


@pytest.mark.parametrize("output", ["png", "jpeg", "gif", "webp"])
def test_a_named_format_is_served_whatever_the_client_accepts(
    client: FlaskClient, services: Services, output: str
) -> None:
    personal_block(services, output=output)
    for accept in (None, WEBP_ACCEPT, PNG_ACCEPT):
        response = open_image(client, services, accept)
        assert response.status_code == 200
        assert response.mimetype == f"image/{output}"
        assert format_of(response.data) == output
        assert decode_image(response.data).size == (300, 100)


def test_an_auto_countdown_is_a_gif_even_for_a_webp_client(
    client: FlaskClient, services: Services
) -> None:
    timer = variant("timer", {"segment": "vip"})
    timer["content"] = {"type": "countdown", "deadline": "2026-11-24T18:00:00+01:00", "frames": 3}
    store_block(services, [timer])
    store_recipient(services, "anna", segments=["vip"])
    for accept in (None, WEBP_ACCEPT):
        response = open_image(client, services, accept)
        assert response.mimetype == "image/gif"
        assert format_of(response.data) == "gif"
        with Image.open(io.BytesIO(response.data)) as gif:
            assert getattr(gif, "n_frames", 1) == 3


@pytest.mark.parametrize("extension", ["png", "gif", "jpg", "webp"])
def test_the_extension_in_the_url_changes_nothing(
    client: FlaskClient, services: Services, extension: str
) -> None:
    personal_block(services)
    reference = open_image(client, services, PNG_ACCEPT)
    response = open_image(client, services, PNG_ACCEPT, path=f"/i/daily/hero.{extension}")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data == reference.data


@pytest.mark.parametrize(("dpr", "scale"), [("1", 1), ("2", 2), ("3", 3)])
def test_dpr_multiplies_the_pixels(
    client: FlaskClient, services: Services, dpr: str, scale: int
) -> None:
    personal_block(services)
    response = open_image(client, services, dpr=dpr)
    assert decode_image(response.data).size == (300 * scale, 100 * scale)


def test_personal_and_generic_images_carry_their_headers(
    client: FlaskClient, services: Services
) -> None:
    personal_block(services)
    personal = open_image(client, services)
    assert personal.headers["Cache-Control"] == "no-cache, no-store, max-age=0, private"
    assert personal.headers["Content-Length"] == str(len(personal.data))
    assert personal.headers["ETag"].startswith('"')
    assert personal.headers["Vary"] == "Accept"
    assert "X-Blanco-Fallback" not in personal.headers

    generic = client.get("/i/daily/hero.png")  # no token: the block's fallback
    assert generic.status_code == 200
    assert corner_color(generic.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert generic.headers["Cache-Control"] == "no-cache, max-age=0"
    assert generic.headers["Content-Length"] == str(len(generic.data))
    assert generic.headers["ETag"].startswith('"')
    assert generic.headers["Vary"] == "Accept"
    assert generic.headers["X-Blanco-Fallback"] == "no verified recipient"


def test_the_image_route_never_redirects(client: FlaskClient, services: Services) -> None:
    personal_block(services)
    token = services.signer.sign("anna")
    for path, query in [
        ("/i/daily/hero.png", {"r": token}),
        ("/i/daily/hero.png", {}),
        ("/i/daily/hero.png", {"r": "tampered.AAAA"}),
        ("/i/daily/missing.png", {"r": token}),
        ("/i/nowhere/hero.png", {"r": token}),
    ]:
        for method in ("GET", "HEAD"):
            response = client.open(path, method=method, query_string=query)
            assert response.status_code == 200, (path, method)
            assert "Location" not in response.headers


def test_a_fallback_that_cannot_be_drawn_answers_one_pixel(
    client: FlaskClient, services: Services
) -> None:
    # a template that fails whatever the profile: the variant and the fallback both break
    store_block(
        services,
        [variant("boom", {"segment": "vip"}, text="{{ 1 / 0 }}")],
        fallback={
            "content": banner("{{ 1 / 0 }}", FALLBACK_BACKGROUND),
            "target_url": FALLBACK_URL,
        },
    )
    store_recipient(services, "anna", segments=["vip"])

    for query in ({"r": services.signer.sign("anna")}, {}):
        response = client.get("/i/daily/hero.png", query_string=query)
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.headers["X-Blanco-Fallback"] == "last resort"
        pixel = decode_image(response.data)
        assert pixel.size == (1, 1)
        # docs/renderers.md: one fully transparent pixel, so nothing shows in the email
        assert pixel.convert("RGBA").getpixel((0, 0)) == (0, 0, 0, 0)


def photo_card_block(services: Services) -> None:
    """A 600×300 block that shows anna a card with an uploaded photograph (a JPEG upload)."""
    upload = io.BytesIO()
    photo().save(upload, format="JPEG", quality=92)
    asset, _ = services.assets.put(upload.getvalue(), "jacket.jpg", now=services.clock())
    card = variant("card", {"segment": "vip"})
    card["content"] = {
        "type": "card",
        "image_asset": asset.id,
        "image_fit": "cover",
        "title": {"text": "Spring jacket"},
        "price": 89.95,
        "cta": {"text": "Shop now"},
    }
    store_block(services, [card], width=600, height=300)
    store_recipient(services, "anna", segments=["vip"])


def test_auto_is_jpeg_for_a_photo_when_webp_is_not_accepted(
    client: FlaskClient, services: Services
) -> None:
    photo_card_block(services)
    for accept in (None, PNG_ACCEPT):
        response = open_image(client, services, accept, dpr="2")  # a .png URL
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
        assert format_of(response.data) == "jpeg"
        assert len(response.data) <= 100_000
        assert decode_image(response.data).size == (1200, 600)
        assert response.headers["Vary"] == "Accept"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    webp = open_image(client, services, WEBP_ACCEPT, dpr="2")
    assert webp.mimetype == "image/webp"
    assert format_of(webp.data) == "webp"
    other = open_image(client, services, PNG_ACCEPT, dpr="2", path="/i/daily/hero.jpg")
    assert other.mimetype == "image/jpeg"  # the extension still changes nothing
    assert other.data == response.data
