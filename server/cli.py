"""The ``blanco`` command: serve, demo, API keys and configuration."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.app import create_app
from server.audience_command import add_audience_command
from server.config import ConfigError, Settings, env_name, load_settings, settings_table
from server.demo import load_demo
from server.demo_routes import bp as demo_page
from server.embed_command import add_embed_command
from server.import_command import add_import_command
from server.logs import configure_logging
from server.metrics import prepare_multiprocess_dir
from server.segment_command import add_segment_command
from server.services import EXTENSION, Services
from server.serving import GunicornServer, gunicorn_options, redis_for


def _say(message: str) -> None:
    """Messages for people go to stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def _quickstart_key(data_dir: Path) -> str:
    """A signing key kept in the data folder, generated on first use (local quick start only)."""
    path = data_dir / "quickstart-signing-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    _say(
        f"No BLANCO_SIGNING_KEYS set: generated a quick-start key in {path}. "
        "Set BLANCO_SIGNING_KEYS in production."
    )
    return key


def _settings(overrides: dict[str, Any], quickstart: bool) -> Settings:
    """Settings; the quick start generates a signing key when none is configured at all."""
    if quickstart and not os.environ.get(env_name("signing_keys")):
        data_dir = Path(os.environ.get(env_name("data_dir"), "data"))
        overrides = {**overrides, "signing_keys": _quickstart_key(data_dir)}
    return load_settings(overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server under gunicorn."""
    overrides: dict[str, Any] = {}
    if args.bind:
        overrides["bind"] = args.bind
    if args.workers:
        overrides["workers"] = args.workers
    settings = _settings(overrides, quickstart=False)
    prepare_multiprocess_dir()
    with redis_for(settings) as url:
        app = create_app({**overrides, "redis_url": url})
        GunicornServer(app, gunicorn_options(settings)).run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the server on an embedded Redis with demo data, printing one line per recipient."""
    bind = f"127.0.0.1:{args.port}"
    overrides: dict[str, Any] = {"bind": bind, "public_url": f"http://{bind}"}
    settings = _settings(overrides, quickstart=True)
    overrides["signing_keys"] = ",".join(settings.signing_keys)
    prepare_multiprocess_dir()
    with redis_for(settings) as url:
        app = create_app({**overrides, "redis_url": url})
        app.register_blueprint(demo_page)
        services: Services = app.extensions[EXTENSION]
        links = load_demo(services)
        _, admin_key = services.api_keys.create("demo", ["admin"])
        _say(f"Blanco demo on http://{bind}  (Redis: {url})")
        _say("Each line: <recipient-id> <image-url> <click-url>. Open the image URLs in a browser;")
        _say(f"an admin API key for this demo: {admin_key}")
        _say(f"the API description: http://{bind}/api/v1/openapi.json")
        _say(f"today's newsletter, filled for every demo recipient: http://{bind}/demo")
        for link in links:
            print(link.recipient_id, link.image_url, link.click_url, flush=True)
        _say("Press Ctrl-C to stop.")
        GunicornServer(app, gunicorn_options(settings)).run()
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    """Create an API key and print it (it is shown only once)."""
    settings = _settings({}, quickstart=False)
    with redis_for(settings) as url:
        app = create_app({"redis_url": url})
        services: Services = app.extensions[EXTENSION]
        record, plain = services.api_keys.create(args.name, args.scope)
        _say(f"created API key {record.id} ({', '.join(record.scopes)}); store it now:")
        print(plain)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting with its default and description."""
    for name, default, description in settings_table():
        print(f"{name}\t{default}\t{description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="blanco", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (gunicorn)")
    serve.add_argument("--bind", help="address to listen on, e.g. 0.0.0.0:8000")
    serve.add_argument("--workers", type=int, help="worker processes")
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="run with demo data on an embedded Redis")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    demo.set_defaults(handler=cmd_demo)

    api_key = commands.add_parser("api-key", help="create an admin API key")
    api_key.add_argument("--name", required=True, help="who or what uses the key")
    api_key.add_argument(
        "--scope",
        action="append",
        choices=["admin", "ingest", "channel"],
        required=True,
        help="scope to grant (repeatable)",
    )
    api_key.set_defaults(handler=cmd_api_key)

    config = commands.add_parser("config", help="list every setting")
    config.set_defaults(handler=cmd_config)

    add_import_command(commands)
    add_segment_command(commands)
    add_audience_command(commands)
    add_embed_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``blanco`` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(os.environ.get(env_name("log_level"), "INFO"))
    try:
        result: int = args.handler(args)
    except ConfigError as exc:
        _say(f"blanco: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
