"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from models.email_clients import AddressRanges, parse_egress_ranges
from models.errors import BlancoError
from models.storage.breakers import CircuitOpen
from models.storage.scan import TopologyChanged
from server.admin_api import api
from server.config import ConfigError, Settings, load_settings
from server.conversion_pixel import bp as conversion_bp
from server.logs import install_request_ids
from server.metrics import install_metrics
from server.open import amp, assets, channel, routes, webview
from server.open.core import OpenCore
from server.open.slots import SlotServer
from server.ops_routes import bp as ops_bp
from server.problems import problem_response, redis_failure
from server.services import EXTENSION, build_services
from server.url_rules import LazyBuildRule

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
log = logging.getLogger(__name__)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from defaults, the environment, then ``overrides``."""
    settings = load_settings(overrides)
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: run `blanco serve` or `blanco demo`, which start an "
            "embedded Redis, or point REDIS_URL at a Redis server"
        )
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.url_rule_class = LazyBuildRule
    app.config["MAX_CONTENT_LENGTH"] = settings.bulk_max_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    blanco = build_services(settings)
    app.extensions[EXTENSION] = blanco
    install_request_ids(app)
    metrics = install_metrics(app)
    core = OpenCore(blanco, metrics, _mpp_ranges(settings))
    app.extensions[routes.CORE] = core
    slots = SlotServer(core)
    app.extensions[routes.SLOTS] = slots
    app.extensions[webview.EXTENSION] = webview.WebView(core, slots)
    app.wsgi_app = routes.OpenRoutes(app, app.wsgi_app, core, slots, metrics)  # type: ignore[method-assign]
    app.register_blueprint(routes.bp)
    app.register_blueprint(webview.bp)
    app.register_blueprint(amp.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(conversion_bp)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(channel.bp)
    _register_error_handlers(app)
    return app


def _mpp_ranges(settings: Settings) -> AddressRanges | None:
    """Apple's MPP egress ranges, when configured (read once, at start-up)."""
    if settings.apple_mpp_ranges_file is None:
        return None
    with settings.apple_mpp_ranges_file.open(encoding="utf-8") as lines:
        return parse_egress_ranges(lines)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BlancoError)
    def blanco_error(error: BlancoError) -> Response:
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = error.code or 500
        problem = BlancoError(error.description or error.name)
        problem.status_code = code
        problem.title = error.name
        response = problem_response(problem)
        if code == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(redis.RedisError)
    @app.errorhandler(redis.exceptions.RedisClusterException)
    @app.errorhandler(TopologyChanged)
    @app.errorhandler(CircuitOpen)
    def redis_error(error: Exception) -> Response:
        settings: Settings = app.extensions[EXTENSION].settings
        problem = redis_failure(error, settings.redis_retry_after_seconds)
        if problem.status_code == 500:
            log.exception("unhandled redis error")
        else:
            log.warning("redis unavailable: %s: %s", type(error).__name__, error)
        return problem_response(problem)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(BlancoError("something went wrong on our side"))
