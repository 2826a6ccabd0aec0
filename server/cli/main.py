"""The ``blanco`` command: serve, demo, API keys and configuration.

A failing command ends in one line on stderr, ``blanco: <what went wrong>``, never a traceback:
exit status 2 for bad arguments or configuration, 1 for anything else (Redis unreachable, an
unknown campaign, a port in use), 130 for Ctrl-C. ``BLANCO_LOG_LEVEL=DEBUG`` also logs the
traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import redis

from models.errors import BlancoError
from models.storage.clients import redact
from server.app import create_app
from server.cli.audience import add_audience_command
from server.cli.context import CommandError, command_services, say
from server.cli.embed import add_embed_command
from server.cli.imports import add_import_command
from server.cli.replay import add_replay_command
from server.cli.segment import add_segment_command
from server.config import ConfigError, Settings, env_name, load_settings, settings_table
from server.demo.data import CAMPAIGN_ID, load_demo
from server.demo.routes import bp as demo_page
from server.demo.session import DemoSession, demo_env_path
from server.embedded_redis import EmbeddedRedisError
from server.logs import configure_logging
from server.metrics import enable_multiprocess
from server.open.amp import SENDER_HEADER, items_path
from server.services import EXTENSION, Services
from server.serving import GunicornServer, bind_in_use, gunicorn_options, redis_for
from server.urls import SEND_PARAM, TOKEN_PARAM

DEMO_AMP_SENDER = "news@example.com"
"""The AMP sender the demo allows when ``BLANCO_AMP_ALLOWED_SENDERS`` is not set."""
log = logging.getLogger(__name__)


def _quickstart_key(data_dir: Path) -> str:
    """A signing key kept in the data folder, generated on first use (local quick start only)."""
    path = data_dir / "quickstart-signing-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    say(
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


def _require_free(bind: str) -> None:
    """Refuse to start when something already listens on ``bind`` (gunicorn would retry, log
    and exit after seconds)."""
    if bind_in_use(bind):
        raise CommandError(
            f"{bind} is already in use: stop what listens there, or choose another "
            "address (blanco demo --port N, blanco serve --bind HOST:PORT)"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server under gunicorn."""
    overrides: dict[str, Any] = {}
    if args.bind:
        overrides["bind"] = args.bind
    if args.workers:
        overrides["workers"] = args.workers
    settings = _settings(overrides, quickstart=False)
    _require_free(settings.bind)
    with redis_for(settings) as url:
        enable_multiprocess(settings.data_dir)  # before the app: its workers' counts add up
        app = create_app({**overrides, "redis_url": url})
        GunicornServer(app, gunicorn_options(settings)).run()
    return 0


def _demo_environment(settings: Settings, redis_url: str, quickstart: bool) -> dict[str, str]:
    """What ``demo.env`` holds: the variables that point a command or a shell at the demo."""
    values = {
        env_name("redis_url"): redis_url,
        env_name("public_url"): settings.public_url,
        env_name("data_dir"): str(settings.data_dir.resolve()),
        env_name("amp_allowed_senders"): settings.amp_allowed_senders,
    }
    if quickstart:
        values[env_name("signing_keys")] = ",".join(settings.signing_keys)
    return values


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the server on an embedded Redis with demo data, printing one line per recipient."""
    bind = f"127.0.0.1:{args.port}"
    overrides: dict[str, Any] = {"bind": bind, "public_url": f"http://{bind}"}
    if not os.environ.get(env_name("amp_allowed_senders")):
        overrides["amp_allowed_senders"] = DEMO_AMP_SENDER
    quickstart = not os.environ.get(env_name("signing_keys"))
    settings = _settings(overrides, quickstart=True)
    overrides["signing_keys"] = ",".join(settings.signing_keys)
    _require_free(bind)
    with redis_for(settings) as url:
        enable_multiprocess(settings.data_dir)  # before the app: its workers' counts add up
        app = create_app({**overrides, "redis_url": url})
        app.register_blueprint(demo_page)
        services: Services = app.extensions[EXTENSION]
        links = load_demo(services)
        _, admin_key = services.api_keys.create("demo", ["admin"])
        say(f"Blanco demo on http://{bind}  (Redis: {redact(url)})")
        say("Each line: <recipient-id> <image-url> <click-url>. Open the image URLs in a browser;")
        say(f"an admin API key for this demo: {admin_key}")
        say(f"the API description: http://{bind}/api/v1/openapi.json")
        say(f"today's newsletter, filled for every demo recipient: http://{bind}/demo")
        _say_how_to_try_amp(services, links[0].recipient_id)
        with DemoSession(settings.data_dir, _demo_environment(settings, url, quickstart)):
            say(
                "while the demo runs, blanco commands in this folder use it "
                "(e.g. blanco embed daily hero --esp mailchimp); for other tools: "
                f"source {demo_env_path(settings.data_dir)}"
            )
            for link in links:
                print(link.recipient_id, link.image_url, link.click_url, flush=True)
            say("Press Ctrl-C to stop.")
            GunicornServer(app, gunicorn_options(settings)).run()
    return 0


def _say_how_to_try_amp(services: Services, recipient_id: str) -> None:
    """How to fetch one demo recipient's AMP items of today's send, as a curl command."""
    allowed, sends = services.settings.amp_senders, services.sends.recent(CAMPAIGN_ID, limit=1)
    if not allowed or not sends:
        return
    sender = f"news{allowed[0]}" if allowed[0].startswith("@") else allowed[0]
    url = (
        f"{services.settings.public_url}{items_path(CAMPAIGN_ID)}?{TOKEN_PARAM}="
        f"{services.signer.sign(recipient_id)}&{SEND_PARAM}={sends[0].id}"
    )
    say(f"AMP for Email: the demo allows the sender {sender}; {recipient_id}'s AMP items:")
    say(f"  curl -H {shlex.quote(f'{SENDER_HEADER}: {sender}')} {shlex.quote(url)}")


def cmd_api_key(args: argparse.Namespace) -> int:
    """Create an API key and print it (it is shown only once)."""
    with command_services() as services:
        record, plain = services.api_keys.create(args.name, args.scope)
        say(f"created API key {record.id} ({', '.join(record.scopes)}); store it now:")
        print(plain)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting with its default and description."""
    for name, default, description in settings_table():
        print(f"{name}\t{default}\t{description}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line that points at ``--help``."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: <message> (see <prog> --help)`` and exit 2."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(prog="blanco", description=__doc__.split("\n\n")[0])
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
    add_replay_command(commands)
    add_audience_command(commands)
    add_embed_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``blanco`` console script: the command's exit status, and one line
    on stderr when it fails."""
    args = build_parser().parse_args(argv)
    try:
        _configure_logging()
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure ends in one line (see the module)
        message, status = failure(exc)
        say("blanco: " + " ".join(message.splitlines()))
        return status
    return result


def _configure_logging() -> None:
    level = os.environ.get(env_name("log_level"), "INFO")
    try:
        configure_logging(level)
    except ValueError:
        raise CommandError(f"BLANCO_LOG_LEVEL: unknown log level {level!r}", status=2) from None


def failure(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit status for a command that raised ``exc``."""
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return f"cannot reach Redis: {exc}", 1
    if isinstance(exc, redis.RedisError):
        return f"Redis answered with an error: {exc}", 1
    if isinstance(exc, EmbeddedRedisError):
        return str(exc), 1
    if isinstance(exc, BlancoError):
        return exc.public_message, 1
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", 1
    log.debug("unexpected error", exc_info=exc)
    return (
        f"unexpected {type(exc).__name__}: {exc} (BLANCO_LOG_LEVEL=DEBUG logs the traceback)",
        1,
    )
