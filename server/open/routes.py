"""Routes for email clients and image proxies: images and clicks of blocks and newsletter slots.

They run at the rate a send's peak brings (every image of every email, fetched by proxies
within minutes), so they are served as plain WSGI in front of Flask (``OpenRoutes``): Flask's
request machinery costs more than a cache-hit open itself. They keep what Flask's hooks give the
other routes: a request id (``X-Request-ID`` in and out, on the log lines written meanwhile), the
request metrics, and no 5xx ever: every failure ends in a fallback image or URL
(``server.open.core``), and anything that escapes even that ends in the last-resort pixel or
Blanco's neutral page. Everything else goes on to Flask.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from flask import Blueprint, Flask, current_app, render_template, request
from werkzeug.urls import iri_to_uri

from server.logs import (
    REQUEST_ID,
    REQUEST_ID_HEADER,
    access_log_enabled,
    new_request_id,
    sane_request_id,
    write_access_line,
)
from server.metrics import Metrics, method_label
from server.open.answers import LAST_RESORT, ImageAnswer, ImageOptions, Redirect
from server.open.core import OpenCore
from server.open.slots import SlotServer
from server.urls import KEY_PARAM, SEND_PARAM, TOKEN_PARAM

log = logging.getLogger(__name__)
bp = Blueprint("open_time", __name__)

PERSONAL_CACHE_CONTROL = "no-cache, no-store, max-age=0, private"
GENERIC_CACHE_CONTROL = "no-cache, max-age=0"
REDIRECT_CACHE_CONTROL = "no-store, private"
CORE = "blanco.open"
SLOTS = "blanco.slots"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def open_core() -> OpenCore:
    """The app's open-time core."""
    found: OpenCore = current_app.extensions[CORE]
    return found


def slot_server() -> SlotServer:
    """The app's newsletter slot service."""
    found: SlotServer = current_app.extensions[SLOTS]
    return found


def image_options() -> ImageOptions:
    """The Flask request's ``dpr`` and ``Accept``."""
    return ImageOptions.from_request(request.args.get("dpr"), request.headers.get("Accept"))


@bp.get("/gone")
def gone() -> tuple[str, int, dict[str, str]]:
    """Neutral landing page for links whose campaign no longer exists."""
    return render_template("gone.html"), 200, {"Cache-Control": "no-store"}


class RequestHeaders(Mapping[str, str]):
    """A WSGI request's headers by their HTTP names, case-insensitively (read from the environ
    only when asked: most opens read two or three)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        value = self._environ.get(self._key(name))
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").title()

    def __len__(self) -> int:
        return sum(1 for key in self._environ if key.startswith("HTTP_"))


@dataclass(frozen=True)
class Asked:
    """What an open-time URL asks: its path's parts, query parameters and headers."""

    environ: dict[str, Any]
    parts: tuple[str, ...]
    query: Mapping[str, str]
    headers: RequestHeaders

    @property
    def method(self) -> str:
        """The HTTP method."""
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()


@dataclass(frozen=True)
class Route:
    """One open-time route: its path pattern, its metrics label, and whether it is an image."""

    pattern: re.Pattern[str]
    label: str
    image: bool
    serve: str
    """The ``OpenRoutes`` method that answers it."""


ROUTES = (
    Route(
        re.compile(r"/i/([^/]+)/([^/]+?)\.(?:png|gif|jpg|webp)"),
        "/i/<campaign_id>/<block_id>.<extension>",
        True,
        "block_image",
    ),
    Route(re.compile(r"/c/([^/]+)/([^/]+)"), "/c/<campaign_id>/<block_id>", False, "block_click"),
    Route(
        re.compile(r"/s/([^/]+)/([0-9]+)\.(?:png|gif|jpg|webp)"),
        "/s/<campaign_id>/<slot>.<extension>",
        True,
        "slot_image",
    ),
    Route(re.compile(r"/s/([^/]+)/([0-9]+)"), "/s/<campaign_id>/<slot>", False, "slot_click"),
)
_PREFIXES = ("/i/", "/c/", "/s/")
_ALLOWED = "GET, HEAD"
NOT_ALLOWED = "405 METHOD NOT ALLOWED"


class OpenRoutes:
    """WSGI middleware: serves the open-time routes itself and hands the rest to ``app``."""

    def __init__(
        self, flask_app: Flask, app: WsgiApp, core: OpenCore, slots: SlotServer, metrics: Metrics
    ) -> None:
        self.flask_app = flask_app
        self.app = app
        self.core = core
        self.slots = slots
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = _path(environ)
        if path[:3] not in _PREFIXES:
            return self.app(environ, start_response)
        for route in ROUTES:
            matched = route.pattern.fullmatch(path)
            if matched is not None:
                return self._serve(route, matched.groups(), environ, start_response)
        return self.app(environ, start_response)

    def _serve(
        self,
        route: Route,
        parts: tuple[str, ...],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        headers = RequestHeaders(environ)
        request_id = sane_request_id(headers.get(REQUEST_ID_HEADER)) or new_request_id()
        bound = REQUEST_ID.set(request_id)
        try:
            asked = Asked(environ, parts, _query(environ), headers)
            if asked.method not in ("GET", "HEAD"):
                status, response_headers, body = (
                    "405 METHOD NOT ALLOWED",
                    [("Allow", _ALLOWED)],
                    b"",
                )
            else:
                status, response_headers, body = self._answer(route, asked)
        finally:
            REQUEST_ID.reset(bound)
        response_headers.append((REQUEST_ID_HEADER, request_id))
        response_headers.append(("Content-Length", str(len(body))))
        start_response(status, response_headers)
        method = method_label(str(environ.get("REQUEST_METHOD", "GET")).upper())
        seconds = time.perf_counter() - started
        self.metrics.count_request(route.label, method, int(status[:3]), seconds)
        if access_log_enabled(self.flask_app):
            token = REQUEST_ID.set(request_id)
            write_access_line(method, route.label, int(status[:3]), seconds)
            REQUEST_ID.reset(token)
        return [] if method == "HEAD" else [body]

    def _answer(self, route: Route, asked: Asked) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            if route.image:
                answer: ImageAnswer = getattr(self, route.serve)(asked)
                return "200 OK", image_headers(answer), answer.image.body
            redirect: Redirect = getattr(self, route.serve)(asked)
        except Exception:  # the core answers every failure itself; this is the last net
            log.exception("open-time route %s failed", route.label)
            if route.image:
                return "200 OK", image_headers(LAST_RESORT), LAST_RESORT.image.body
            redirect = Redirect(self.core.default_url())
        return "302 FOUND", self._redirect_headers(redirect), b""

    def _redirect_headers(self, redirect: Redirect) -> list[tuple[str, str]]:
        headers = redirect_headers(redirect.url)
        settings = self.core.services.settings
        if redirect.click_token and settings.click_cookie_domain:
            headers.append(
                (
                    "Set-Cookie",
                    click_cookie(
                        redirect.click_token,
                        settings.click_cookie_domain,
                        round(settings.attribution_click_days * 86400),
                    ),
                )
            )
        return headers

    # the four routes

    def block_image(self, asked: Asked) -> ImageAnswer:
        """The block's image for the recipient in ``r``: decided, rendered and recorded now
        (the extension is cosmetic: the content type follows the block and ``Accept``)."""
        campaign_id, block_id = asked.parts
        core = self.core
        return core.block_image(
            campaign_id,
            block_id,
            core.identify(asked.query.get(TOKEN_PARAM), asked.query.get(KEY_PARAM)),
            core.classify_image_request(
                asked.method, asked.headers, asked.environ.get("REMOTE_ADDR")
            ),
            core.services.clock(),
            options=_options(asked),
            send_id=asked.query.get(SEND_PARAM),
        )

    def block_click(self, asked: Asked) -> Redirect:
        """Where a click on the block goes: what this recipient's open showed (or what they
        would be shown now)."""
        campaign_id, block_id = asked.parts
        core = self.core
        return core.block_click(
            campaign_id,
            block_id,
            core.identify(asked.query.get(TOKEN_PARAM), asked.query.get(KEY_PARAM)),
            asked.method,
            asked.headers,
            asked.query.get(SEND_PARAM),
        )

    def slot_image(self, asked: Asked) -> ImageAnswer:
        """Newsletter slot ``slot`` for the recipient in ``r`` and the send in ``s``: the item
        at that rank of the recipient's ranking for the send (ranked once, shared by every
        slot)."""
        campaign_id, slot = asked.parts
        core = self.core
        return self.slots.image(
            campaign_id,
            int(slot),
            core.identify(asked.query.get(TOKEN_PARAM), asked.query.get(KEY_PARAM)),
            asked.query.get(SEND_PARAM),
            core.classify_image_request(
                asked.method, asked.headers, asked.environ.get("REMOTE_ADDR")
            ),
            core.services.clock(),
            _options(asked),
        )

    def slot_click(self, asked: Asked) -> Redirect:
        """Where the slot's click goes: the item this recipient's email shows in it (its
        fallback if none)."""
        campaign_id, slot = asked.parts
        core = self.core
        return self.slots.click(
            campaign_id,
            int(slot),
            core.identify(asked.query.get(TOKEN_PARAM), asked.query.get(KEY_PARAM)),
            asked.query.get(SEND_PARAM),
            asked.method,
            asked.headers,
        )


def image_headers(answer: ImageAnswer) -> list[tuple[str, str]]:
    """The headers of an image answer: kept out of shared caches when personal."""
    headers = [
        ("Content-Type", answer.image.media_type),
        (
            "Cache-Control",
            PERSONAL_CACHE_CONTROL if answer.personalised else GENERIC_CACHE_CONTROL,
        ),
        ("ETag", answer.etag),
        ("X-Content-Type-Options", "nosniff"),
        ("Vary", "Accept"),
    ]
    if answer.fallback_reason:
        headers.append(("X-Blanco-Fallback", answer.fallback_reason))
    return headers


def redirect_headers(url: str) -> list[tuple[str, str]]:
    """The headers of a click's redirect (never cached, no referrer passed on)."""
    return [
        ("Location", iri_to_uri(url)),
        ("Cache-Control", REDIRECT_CACHE_CONTROL),
        ("Referrer-Policy", "no-referrer"),
    ]


CLICK_COOKIE = "blanco_click"
"""The first-party cookie of a click's attribution token (``BLANCO_CLICK_COOKIE_DOMAIN``)."""


def click_cookie(token: str, domain: str, max_age: int) -> str:
    """The ``Set-Cookie`` value of a click's attribution token for the shop's ``domain``."""
    return (
        f"{CLICK_COOKIE}={token}; Domain={domain.lstrip('.')}; Path=/; Max-Age={max_age}; "
        "Secure; HttpOnly; SameSite=Lax"
    )


def _path(environ: dict[str, Any]) -> str:
    """The request path, decoded as werkzeug decodes it (WSGI gives it as latin-1)."""
    raw = environ.get("PATH_INFO", "")
    try:
        return str(raw).encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return str(raw)


def _query(environ: dict[str, Any]) -> dict[str, str]:
    """The query string's parameters (the first value of each name wins), decoded as werkzeug
    decodes them."""
    raw = str(environ.get("QUERY_STRING", ""))
    found: dict[str, str] = {}
    for pair in raw.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair or not pair.isascii():
            name, value = _unquote(name), _unquote(value)
        found.setdefault(name, value)
    return found


def _unquote(text: str) -> str:
    with contextlib.suppress(UnicodeEncodeError):  # not from WSGI's latin-1: as it is
        text = text.encode("latin-1").decode("utf-8", "replace")
    return unquote_plus(text)


def _options(asked: Asked) -> ImageOptions:
    return ImageOptions.from_request(asked.query.get("dpr"), asked.headers.get("Accept"))
