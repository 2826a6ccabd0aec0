"""Stale predictive scores count as missing: per-model maximum ages, at open time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask

from models.recipients.score_freshness import ScoreMaxAges
from models.recipients.upserts import ScoresUpsert, ScoreValue
from server.config import ConfigError, load_settings
from server.services import EXTENSION
from tests.conftest import SIGNING_KEY
from tests.factories import FakeClock, corner_color, hex_rgb, store_block, store_recipient, variant

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def score(hours_old: float, value: float = 0.9) -> ScoreValue:
    return ScoreValue(value=value, computed_at=NOW - dt.timedelta(hours=hours_old))


def test_exact_names_beat_prefixes_and_the_longest_prefix_wins() -> None:
    ages = ScoreMaxAges.parse(168, "travel=24, affinity:*=72, affinity:city*=12")
    assert ages.max_age("travel") == dt.timedelta(hours=24)
    assert ages.max_age("affinity:beach") == dt.timedelta(hours=72)
    assert ages.max_age("affinity:city_trip") == dt.timedelta(hours=12)
    assert ages.max_age("churn_risk") == dt.timedelta(hours=168)


def test_only_fresh_values_are_kept() -> None:
    ages = ScoreMaxAges.parse(48, "travel=24")
    scores = {
        "travel": score(25),
        "churn": score(47, 0.2),
        "old": score(49),
        "undated": ScoreValue(value=1.0),
    }
    assert ages.fresh_values(scores, NOW) == {"churn": 0.2}


@pytest.mark.parametrize("text", ["travel", "travel=0", "travel=-3", "=5", "travel=soon"])
def test_bad_max_ages_stop_start_up_naming_the_variable(text: str) -> None:
    environ = {"BLANCO_SIGNING_KEYS": SIGNING_KEY, "BLANCO_SCORE_MAX_AGES": text}
    with pytest.raises(ConfigError, match="BLANCO_SCORE_MAX_AGES"):
        load_settings(environ=environ)


def test_a_stale_score_no_longer_targets_the_open(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app(score_max_ages="travel=24")
    services = app.extensions[EXTENSION]
    store_block(services, [variant("trip", {"score": "travel", "gte": 0.7}, background="#00AA00")])
    store_recipient(services, "anna")
    computed = clock.now - dt.timedelta(hours=20)
    services.recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": "anna",
                    "scores": {"travel": {"value": 0.9, "computed_at": computed}},
                }
            )
        ]
    )
    url = f"/i/daily/hero.png?r={services.signer.sign('anna')}"
    client = app.test_client()
    assert corner_color(client.get(url).data) == hex_rgb("#00AA00")

    clock.advance(hours=5)  # the score is now 25 hours old: past travel's 24
    response = client.get(url)
    assert response.headers["X-Blanco-Fallback"] == "no variant matched"
