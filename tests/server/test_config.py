"""The configuration table: typed, defaulted, described; bad values stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, Settings, env_name, load_settings, settings_table

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


def test_every_setting_is_described_and_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, _, description in settings_table():
        assert description, name
        assert f"`{name}`" in readme, f"{name} is missing from the README"
    assert len(settings_table()) == len(Settings.model_fields)
    assert env_name("redis_url") == "REDIS_URL"
