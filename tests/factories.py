"""Factories for test data, so tests state only what matters to them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from redis.connection import AbstractConnection
from werkzeug.test import TestResponse

from models.campaigns.specs import Block, BlockSpec, CampaignSpec
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from models.storage import batch as batch_module
from models.storage.batch import SINGLE_NODE
from models.storage.clients import cluster_of, connect, parse_redis_url
from server.services import Services


class FakeClock:
    """A clock tests can set and advance."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += dt.timedelta(**delta)


def banner(
    text: str = "Hello {{ first_name }}", background: str = "#112233", **extra: Any
) -> dict[str, Any]:
    """Banner content params."""
    return {
        "type": "banner",
        "background": background,
        "lines": [{"text": text, "font_size": 32, "color": "#FFFFFF"}],
        **extra,
    }


def variant(
    variant_id: str,
    when: dict[str, Any] | None = None,
    *,
    priority: int = 0,
    weight: float = 1.0,
    background: str = "#224466",
    text: str | None = None,
    target_url: str | None = None,
) -> dict[str, Any]:
    """A variant document; the target URL and colour identify it in assertions."""
    document: dict[str, Any] = {
        "id": variant_id,
        "priority": priority,
        "weight": weight,
        "content": banner(text or f"{variant_id} {{{{ first_name }}}}", background),
        "target_url": target_url or f"https://shop.example/{variant_id}",
    }
    if when is not None:
        document["when"] = when
    return document


FALLBACK_URL = "https://shop.example/generic"
FALLBACK_BACKGROUND = "#808080"


def block(
    block_id: str = "hero", variants: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    """A block document with a grey generic fallback."""
    return {
        "id": block_id,
        "width": 300,
        "height": 100,
        "fallback": {
            "content": banner("Our offers", FALLBACK_BACKGROUND),
            "target_url": FALLBACK_URL,
        },
        "variants": variants or [],
        **extra,
    }


def store_block(
    services: Services,
    variants: list[dict[str, Any]],
    campaign_id: str = "daily",
    **extra: Any,
) -> Block:
    """Create the campaign (if needed) and store a block; return the stored version."""
    if services.campaigns.get_campaign(campaign_id) is None:
        services.campaigns.create_campaign(CampaignSpec(id=campaign_id))
    stored, _ = services.campaigns.put_block(
        campaign_id, BlockSpec.model_validate(block(variants=variants, **extra))
    )
    return stored


def store_recipient(
    services: Services,
    recipient_id: str,
    attributes: dict[str, Any] | None = None,
    scores: dict[str, float] | None = None,
    segments: list[str] | None = None,
) -> None:
    """Store a profile and scores for a recipient."""
    services.recipients.upsert_profiles(
        [
            ProfileUpsert(
                recipient_id=recipient_id,
                attributes=attributes or {"first_name": recipient_id.title()},
                segments=segments,
            )
        ]
    )
    if scores:
        services.recipients.upsert_scores(
            [
                ScoresUpsert.model_validate(
                    {
                        "recipient_id": recipient_id,
                        "computed_at": services.clock(),
                        "scores": scores,
                    }
                )
            ]
        )


def decode_image(body: bytes) -> Image.Image:
    """Open and fully decode image bytes (raises if they are not a valid image)."""
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def corner_color(body: bytes) -> tuple[int, ...]:
    """The RGB colour of the image's top-left pixel (the banner background)."""
    pixel = decode_image(body).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``#RRGGBB`` as an RGB tuple."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


API = "/api/v1"


class AdminApi:
    """The admin API through a test client: paths relative to ``/api/v1``, with an API key."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> TestResponse:
        """Send one request; ``headers`` add to (or override) the API key header."""
        return self.client.open(
            API + path, method=method, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        """POST to ``path``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        """PUT to ``path``."""
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The RFC 9457 problem document of ``response``, checking its status and media type."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data(as_text=True))
    assert body["status"] == status
    assert body["type"].startswith("https://blanco.dev/problems/")
    assert body["title"]
    assert body["detail"]
    return body


def error_pointers(response: TestResponse) -> list[tuple[str, str]]:
    """(pointer, field) of each error of a 422 problem response."""
    return [(e["pointer"], e["field"]) for e in problem(response, 422).get("errors", [])]


def redis_contents(client: redis.Redis, match: str = "*") -> dict[str, Any]:
    """Every key matching ``match`` with its value, for comparing or searching stored state."""
    contents: dict[str, Any] = {}
    for key in client.scan_iter(match=match, count=1000):
        kind = client.type(key)
        if kind == "string":
            contents[key] = client.get(key)
        elif kind == "hash":
            contents[key] = client.hgetall(key)
        elif kind == "set":
            contents[key] = sorted(client.smembers(key))
        elif kind == "list":
            contents[key] = client.lrange(key, 0, -1)
        elif kind == "zset":
            contents[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            contents[key] = [fields for _, fields in client.xrange(key)]
        else:
            contents[key] = kind
    return contents


def jsonl(*rows: dict[str, Any] | str) -> bytes:
    """JSON Lines: dicts are encoded, strings sent as they are."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def csv_file(header: list[str], *rows: list[Any]) -> bytes:
    """A CSV file with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def open_every_breaker(app: Flask) -> None:
    """Put the app in the state right after every Redis node failed: the open path's circuit
    breakers skip each node for their window."""
    core = app.extensions["blanco.open"]
    for node in redis_nodes(core.services.redis_open):
        core.breakers.failed(node)


def redis_nodes(client: Any) -> list[str]:
    """The node names the open path's breakers know the client's Redis by."""
    cluster = cluster_of(client)
    if cluster is None:
        return [SINGLE_NODE]
    return [node.name for node in cluster.get_primaries()]


def raw_client(redis_url: str, **options: Any) -> Any:
    """Another client on the test Redis (a cluster client on a cluster), e.g. a bytes client."""
    client = connect(parse_redis_url(redis_url), timeout=5.0, **{"decode": False, **options})
    return cluster_of(client) or client


def command_calls(client: Any, command: str) -> int:
    """How often Redis (every primary of a cluster) ran ``command`` since its stats reset."""
    return sum(
        int(info.get(f"cmdstat_{command}", {}).get("calls", 0))
        for info in _each_node(client, lambda node: node.info("commandstats"))
    )


def reset_command_stats(client: Any) -> None:
    """Reset Redis's command statistics (on every primary of a cluster)."""
    _each_node(client, lambda node: node.config_resetstat())


def _each_node(client: Any, call: Any) -> list[Any]:
    cluster = cluster_of(client)
    if cluster is None:
        return [call(client)]
    return [call(cluster.get_redis_connection(node)) for node in cluster.get_primaries()]


class RoundTrips:
    """Counts the command batches this thread sends to Redis, by the node they go to (a
    counter around the two ways a batch leaves: Blanco's batches and redis-py's own calls).

    The handshake of a connection opened meanwhile (``HELLO``, ``CLIENT SETINFO``) is counted
    apart, in ``handshakes``: a thread opens one when another thread (the background writer)
    holds the pool's only connection, which is not a cost of the request itself."""

    def __init__(self, monkeypatch: Any) -> None:
        self.sent: Counter[str] = Counter()
        self.handshakes: Counter[str] = Counter()
        thread = threading.get_ident()
        packed = AbstractConnection.send_packed_command
        fast = batch_module._send
        handshake = AbstractConnection.on_connect_check_health
        shaking = threading.local()

        def note(connection: Any) -> None:
            if threading.get_ident() == thread:
                place = getattr(connection, "path", None) or f"{connection.host}:{connection.port}"
                counter = self.handshakes if getattr(shaking, "on", False) else self.sent
                counter[str(place)] += 1

        def counting_packed(connection: Any, command: Any, check_health: bool = True) -> None:
            note(connection)
            packed(connection, command, check_health)

        def counting_fast(connection: Any, data: bytes) -> None:
            if getattr(connection, "_sock", None) is not None:
                note(connection)  # else redis-py's own send, counted there
            fast(connection, data)

        def counting_handshake(connection: Any, check_health: bool = True) -> None:
            shaking.on = True
            try:
                handshake(connection, check_health)
            finally:
                shaking.on = False

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_packed)
        monkeypatch.setattr(batch_module, "_send", counting_fast)
        monkeypatch.setattr(AbstractConnection, "on_connect_check_health", counting_handshake)

    @property
    def total(self) -> int:
        """Batches sent, to any node."""
        return sum(self.sent.values())


CLICK_TOKEN_PARAM = "bl_click"


def landing(response: TestResponse | Any) -> str:
    """Where a click's redirect goes, without the attribution token a person's click adds
    (``tests/server/test_click_attribution.py`` checks the token itself)."""
    location = response.headers.get("Location")
    assert location is not None, "not a redirect"
    return strip_click_token(str(location))


def strip_click_token(url: str) -> str:
    """``url`` without its attribution token."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != CLICK_TOKEN_PARAM]
    if len(kept) == len(query):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))
