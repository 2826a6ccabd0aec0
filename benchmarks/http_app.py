"""The app gunicorn serves in HTTP mode: Blanco configured from the environment, plus the
constant-bytes route. Run as ``gunicorn 'benchmarks.http_app:create_bench_app()'``."""

from __future__ import annotations

from flask import Flask

from benchmarks.constant_route import register_constant_route
from server import create_app


def create_bench_app() -> Flask:
    """Blanco's app with the benchmark's baseline route."""
    app = create_app()
    register_constant_route(app)
    return app
