"""What the short-lived ``blanco`` commands (api-key, import, segment, audience, embed) run with,
and the error they end in.

Settings come from the environment. When neither ``REDIS_URL`` nor ``BLANCO_SIGNING_KEYS`` is
set and a demo runs on the data folder, the demo's ``demo.env`` fills in what the environment
does not set (its Redis, quick-start key and public URL), and the command says so on stderr.
Without ``REDIS_URL`` a command uses the embedded Redis that a running ``blanco serve`` or
``blanco demo`` already serves from the data folder, else starts one for its own duration.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from server.config import Settings, env_name, load_settings
from server.demo.session import demo_env_path, running_demo
from server.embedded_redis import EmbeddedRedis
from server.services import EXTENSION, Services

DEFAULT_DATA_DIR: Path = Settings.model_fields["data_dir"].default


class CommandError(Exception):
    """A failure a command reports as one line, ``blanco: <message>``, exiting ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def say(message: str) -> None:
    """Messages for people go to stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def command_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a command: the environment, else a running demo's (see the module)."""
    found = dict(os.environ if environ is None else environ)
    redis_url, keys = env_name("redis_url"), env_name("signing_keys")
    if redis_url not in found and keys not in found:
        data_dir = Path(found.get(env_name("data_dir"), DEFAULT_DATA_DIR))
        demo = running_demo(data_dir)
        if demo is None:
            raise CommandError(
                f"{keys} is not set: set it to the keys your Blanco server signs with "
                "(and REDIS_URL to its Redis), or start `blanco demo` in this folder: "
                "commands then use the demo's",
                status=2,
            )
        say(f"using the running demo's Redis and key ({demo_env_path(data_dir)})")
        found = {**demo, **found}
    return load_settings(environ=found)


def settings_overrides(settings: Settings) -> dict[str, Any]:
    """``settings`` as ``create_app`` overrides, so the app sees exactly these settings."""
    return {name: getattr(settings, name) for name in Settings.model_fields}


@contextlib.contextmanager
def command_services(environ: Mapping[str, str] | None = None) -> Iterator[Services]:
    """The services of an app on the command's Redis, for the duration of the command."""
    from server.app import create_app  # the factory imports the whole app; only commands need it
    from server.serving import redis_for

    settings = command_settings(environ)
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        if embedded.in_use():
            say(f"using the embedded Redis already running in {embedded.data_dir}")
            settings = settings.model_copy(update={"redis_url": embedded.url})
    with redis_for(settings) as url:
        app = create_app({**settings_overrides(settings), "redis_url": url})
        found: Services = app.extensions[EXTENSION]
        yield found
