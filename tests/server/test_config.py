"""The configuration table: typed, defaulted, described; bad values stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import config_docs
from server.config import ConfigError, Settings, env_name, load_settings, settings_table
from server.config_docs import DOC_PATH, configuration_markdown, friendly_default

GOOD_KEY = "k" * 40


def test_environment_then_overrides() -> None:
    env = {
        "BLANCO_SIGNING_KEYS": f"{GOOD_KEY}, {'j' * 40}",
        "BLANCO_WORKERS": "5",
        "REDIS_URL": "redis://x:6379/0",
    }
    settings = load_settings({"workers": 3}, environ=env)
    assert settings.signing_keys == (GOOD_KEY, "j" * 40)
    assert settings.workers == 3
    assert settings.redis_url == "redis://x:6379/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "BLANCO_SIGNING_KEYS: .*at least one signing key"),
        ({"BLANCO_SIGNING_KEYS": "change-me"}, "placeholder"),
        ({"BLANCO_SIGNING_KEYS": "short"}, "at least 32 characters"),
        ({"BLANCO_SIGNING_KEYS": GOOD_KEY, "BLANCO_WORKERS": "0"}, "BLANCO_WORKERS"),
        (
            {"BLANCO_SIGNING_KEYS": GOOD_KEY, "BLANCO_MAX_IMAGE_PIXELS": "-1"},
            "BLANCO_MAX_IMAGE_PIXELS",
        ),
        ({"BLANCO_SIGNING_KEYS": GOOD_KEY, "BLANCO_PUBLIC_URL": "blanco.example"}, "http"),
    ],
)
def test_bad_settings_fail_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_every_setting_is_described_and_documented() -> None:
    page = DOC_PATH.read_text(encoding="utf-8")
    for name, _, description in settings_table():
        assert description, name
        assert f"| `{name}` |" in page, f"{name} is missing from docs/configuration.md"
    assert len(settings_table()) == len(Settings.model_fields)
    assert env_name("redis_url") == "REDIS_URL"


def test_the_configuration_page_is_generated_from_the_code() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == configuration_markdown(), (
        "docs/configuration.md is out of date: run python -m server.config_docs"
    )
    assert config_docs.main(["--check"]) == 0


def test_the_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    assert config_docs.main(["--check", "--path", str(page)]) == 1  # missing
    assert config_docs.main(["--path", str(page)]) == 0
    assert config_docs.main(["--check", "--path", str(page)]) == 0
    page.write_text(page.read_text().replace("`BLANCO_WORKERS`", "`BLANCO_WORKER`"))
    assert config_docs.main(["--check", "--path", str(page)]) == 1


def test_the_page_follows_every_description() -> None:
    changed = [(name, default, f"{text} Changed.") for name, default, text in settings_table()]
    page = configuration_markdown(changed)
    assert page != configuration_markdown()
    assert page.count(" Changed. |") == len(changed)


@pytest.mark.parametrize(
    ("variable", "default", "shown"),
    [
        ("REDIS_URL", "", "(empty)"),
        ("BLANCO_APPLE_MPP_RANGES_FILE", "None", "(empty)"),
        ("BLANCO_RECORD_IN_BACKGROUND", "True", "`true`"),
        ("BLANCO_DECISION_TTL_SECONDS", "5184000", "`5184000` (60 days)"),
        ("BLANCO_RENDER_CACHE_TTL_SECONDS", "86400", "`86400` (1 day)"),
        ("BLANCO_ASSET_MAX_BYTES", "5242880", "`5242880` (5 MiB)"),
        ("BLANCO_REDIS_TIMEOUT_SECONDS", "0.5", "`0.5`"),
        ("BLANCO_MAX_IMAGE_PIXELS", "4000000", "`4000000`"),
    ],
)
def test_defaults_are_shown_readably(variable: str, default: str, shown: str) -> None:
    assert friendly_default(variable, default) == shown
