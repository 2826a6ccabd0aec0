"""Measurement end to end: counters equal events, holdout, bandit, reports as JSON, CSV, PNG."""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.campaigns.experiments import ArmOutcome
from models.campaigns.specs import BLOCK_SERVER_FIELDS
from models.measurement import arm_counts, stats
from models.measurement.event_stream import campaign_event_entries
from models.measurement.reports import control_arm
from models.storage import keys
from server.services import Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    corner_color,
    decode_image,
    hex_rgb,
    store_block,
    store_recipient,
    variant,
)

GMAIL = {
    "User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
    "(via ggpht.com GoogleImageProxy)"
}
APPLE_MPP = {"User-Agent": "Mozilla/5.0"}
IOS_MAIL = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
}
BROWSER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
}
SCANNER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "Accept": "*/*",
}


def open_image(client: FlaskClient, services: Services, rid: str, headers: dict[str, str]) -> Any:
    return client.get(
        "/i/daily/hero.png", query_string={"r": services.signer.sign(rid)}, headers=headers
    )


def click(
    client: FlaskClient, services: Services, rid: str, headers: dict[str, str], method: str = "GET"
) -> Any:
    return client.open(
        "/c/daily/hero",
        method=method,
        query_string={"r": services.signer.sign(rid)},
        headers=headers,
    )


def report(client: FlaskClient, headers: dict[str, str], **query: str) -> Any:
    response = client.get("/api/v1/campaigns/daily/report", headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_counters_equal_the_events_after_a_scripted_mix(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("hot", {"score": "p", "gte": 0.5})])
    for rid, score in (("anna", 0.9), ("bram", 0.8), ("eva", 0.1)):
        store_recipient(services, rid, scores={"p": score})
    open_image(client, services, "anna", APPLE_MPP)  # prefetch at delivery
    open_image(client, services, "anna", IOS_MAIL)  # the real open
    open_image(client, services, "anna", IOS_MAIL)  # again: not unique
    open_image(client, services, "bram", GMAIL)
    open_image(client, services, "eva", IOS_MAIL)
    click(client, services, "anna", SCANNER)  # Safe Links style scan
    click(client, services, "anna", BROWSER, method="HEAD")
    click(client, services, "anna", BROWSER)
    click(client, services, "bram", BROWSER)
    click(client, services, "bram", BROWSER)

    events = [e[1] for e in campaign_event_entries(services.redis, "daily")]
    counted = Counter((e["type"], e["variant"], e["kind"]) for e in events)
    document = report(client, admin_headers)
    rows = {(r["variant"]): r for r in document["totals"]}
    hot, generic = rows["hot"], rows["_fallback"]
    assert hot["opens"] == sum(n for (t, v, _), n in counted.items() if t == "open" and v == "hot")
    assert hot["machine_opens"] == counted[("open", "hot", "machine")] == 1
    assert hot["opens"] == 5 - 1  # eva saw the fallback
    assert hot["approx_unique_opens"] == 2  # anna (the MPP prefetch is not a person) and bram
    assert hot["clicks"] == counted[("click", "hot", "human")] == 3
    assert hot["bot_clicks"] == counted[("click", "hot", "bot")] == 2
    assert hot["approx_unique_clicks"] == 2
    assert hot["recipients"] is None  # a day's unique figures are the approximate ones
    arms = document["blocks"]["hero"]["arms"]
    assert arms["hot"]["money"]["click"]["orders"] == 0  # nobody bought anything
    assert {k: v for k, v in arms["hot"].items() if k != "money"} == {
        "recipients": 2,
        "openers": 2,
        "clickers": 2,
        "clickers_seen_opening": 2,
        "click_rate": 1.0,
        "click_to_open_rate": 1.0,
    }
    assert (arms["_fallback"]["recipients"], arms["_fallback"]["openers"]) == (1, 1)
    assert hot["by_client"]["gmail_proxy"]["opens"] == 1
    assert generic["opens"] == 1
    assert all(e["recipient"] not in ("anna", "bram", "eva") for e in events)  # pseudonyms


def test_holdout_gets_the_generic_content_and_is_kept_out_of_variant_stats(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("hot", background="#CC0000")], experiment={"holdout": 0.3})
    held = 0
    for index in range(60):
        rid = f"r{index}"
        store_recipient(services, rid)
        response = open_image(client, services, rid, IOS_MAIL)
        if response.headers.get("X-Blanco-Fallback") == "holdout":
            held += 1
            assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
        else:
            assert corner_color(response.data) == hex_rgb("#CC0000")
    assert 8 <= held <= 30
    totals = {r["variant"]: r for r in report(client, admin_headers)["totals"]}
    assert totals["holdout"]["opens"] == held
    assert totals["hot"]["opens"] == 60 - held
    document = report(client, admin_headers)
    assert document["blocks"]["hero"]["arms"]["holdout"]["recipients"] == held
    (comparison,) = document["blocks"]["hero"]["comparisons"]
    assert (comparison["arm"], comparison["control"]) == ("hot", "holdout")
    assert (comparison["arm_trials"], comparison["metric"]) == (60 - held, "click_rate")


def test_the_bandit_sends_most_traffic_to_the_best_variant(
    client: FlaskClient, services: Services
) -> None:
    store_block(
        services,
        [variant("a", background="#CC0000"), variant("b", background="#00AA00")],
        experiment={"mode": "bandit", "min_exploration": 0.1},
    )
    seed_arms(services, {"a": (1000, 0, 20), "b": (1000, 0, 120)})
    shown: Counter[tuple[int, ...]] = Counter()
    for index in range(200):
        rid = f"r{index}"
        store_recipient(services, rid)
        shown[corner_color(open_image(client, services, rid, IOS_MAIL).data)] += 1
    assert shown[hex_rgb("#00AA00")] > 160


def test_promoting_the_winner_ends_the_experiment(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a"), variant("b")], experiment={"mode": "bandit"})
    response = client.post(
        "/api/v1/campaigns/daily/blocks/hero/experiment/promote",
        json={"variant_id": "b"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    block = services.campaigns.get_block("daily", "hero")
    assert block is not None
    assert block.experiment is None
    assert block.variant("b").priority > block.variant("a").priority  # type: ignore[union-attr]
    state = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    assert state.get_json()["experiment"] is None
    missing = client.post(
        "/api/v1/campaigns/daily/blocks/hero/experiment/promote",
        json={"variant_id": "zzz"},
        headers=admin_headers,
    )
    assert missing.status_code == 404


def test_csv_and_chart(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    empty_chart = client.get("/api/v1/campaigns/daily/report.png", headers=admin_headers)
    assert empty_chart.status_code == 200
    open_image(client, services, "anna", IOS_MAIL)
    click(client, services, "anna", BROWSER)
    chart = client.get("/api/v1/campaigns/daily/report.png", headers=admin_headers)
    assert decode_image(chart.data).size == (600, 720)
    assert chart.data != empty_chart.data
    text = client.get(
        "/api/v1/campaigns/daily/report", headers=admin_headers, query_string={"format": "csv"}
    )
    assert text.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    assert [(r["variant"], r["opens"], r["clicks"]) for r in rows] == [("hot", "1", "1")]
    assert (rows[0]["approx_unique_opens"], rows[0]["recipients"]) == ("1", "")  # a day: ≈ only


def test_bad_report_ranges_are_refused(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [])
    response = client.get(
        "/api/v1/campaigns/daily/report",
        headers=admin_headers,
        query_string={"from": "2026-12-01", "to": "2026-11-01"},
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/from"
    response = client.get(
        "/api/v1/campaigns/daily/report", headers=admin_headers, query_string={"to": "yesterday"}
    )
    assert response.get_json()["errors"][0]["pointer"] == "/to"


def test_every_counter_key_expires(client: FlaskClient, services: Services) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    open_image(client, services, "anna", IOS_MAIL)
    open_image(client, services, "anna", IOS_MAIL)
    click(client, services, "anna", BROWSER)
    counter_keys = list(services.redis.scan_iter("blanco:ev:*"))
    assert len(counter_keys) >= 4
    for key in counter_keys:
        if ":events" not in key:  # the event streams are trimmed by length, not time
            assert services.redis.ttl(key) > 0, key


def test_the_bandits_counters_are_read_again_every_5_s_per_worker(
    app: Any, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    totals = app.extensions["blanco.open"].engine.totals
    assert isinstance(totals, stats.CachedTotals)
    assert totals.seconds == 5.0
    now = [1000.0]
    monkeypatch.setattr("models.measurement.stats.time.monotonic", lambda: now[0])
    seed_arms(services, {"a": (10, 0, 1)})
    assert totals("daily", "hero") == {"a": ArmOutcome(10, 1)}
    seed_arms(services, {"a": (20, 0, 5)})
    now[0] += 4.9
    assert totals("daily", "hero") == {"a": ArmOutcome(10, 1)}  # held for 5 s
    now[0] += 0.1
    assert totals("daily", "hero") == {"a": ArmOutcome(10, 1)}  # answered while read again behind
    for _ in range(200):  # the background read lands
        if totals("daily", "hero") == {"a": ArmOutcome(20, 5)}:
            break
        threading.Event().wait(0.01)
    assert totals("daily", "hero") == {"a": ArmOutcome(20, 5)}


def test_a_pilot_shows_the_targeted_content_to_its_share_and_rolls_out_as_it_grows(
    client: FlaskClient, services: Services
) -> None:
    recipients = [f"r{index}" for index in range(80)]
    for rid in recipients:
        store_recipient(services, rid)

    def shown(pilot: float) -> dict[str, str]:
        store_block(
            services,
            [variant("hot", background="#CC0000")],
            experiment={"holdout": 0.2, "pilot": pilot},
        )
        answers: dict[str, str] = {}
        for rid in recipients:
            response = open_image(client, services, rid, IOS_MAIL)
            reason = response.headers.get("X-Blanco-Fallback", "hot")
            if reason == "hot":
                assert corner_color(response.data) == hex_rgb("#CC0000")
            else:
                assert corner_color(response.data) == hex_rgb(FALLBACK_BACKGROUND)
            answers[rid] = reason
        return answers

    small = shown(0.25)
    held = {rid for rid, reason in small.items() if reason == "holdout"}
    rest = [rid for rid in recipients if rid not in held]
    piloted = {rid for rid in rest if small[rid] == "hot"}
    assert 4 <= len(held) <= 28
    assert set(small.values()) == {"holdout", "outside the pilot", "hot"}
    assert 0.1 * len(rest) <= len(piloted) <= 0.45 * len(rest)

    larger = shown(0.75)
    assert {rid for rid, reason in larger.items() if reason == "holdout"} == held
    rolled_out = {rid for rid in rest if larger[rid] == "hot"}
    assert piloted < rolled_out  # raising the share keeps everyone who had it
    assert 0.55 * len(rest) <= len(rolled_out) <= 0.9 * len(rest)
    full = shown(1.0)
    assert {rid for rid in rest if full[rid] == "hot"} == set(rest)


def hero_comparisons(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    blocks = report(client, headers)["blocks"]
    found: list[dict[str, Any]] = blocks["hero"]["comparisons"] if "hero" in blocks else []
    return found


def seed_arms(services: Services, arms: dict[str, tuple[int, int, int]]) -> None:
    """Exact recipients, openers and clickers per arm of the hero block to date, as the
    recorder counts them (clickers need not have been seen opening: MPP and images-off
    readers; half of them were here)."""
    mapping = {}
    for arm, (recipients, openers, clickers) in arms.items():
        counts = (recipients, openers, clickers, min(openers, clickers // 2))
        for name, count in zip(arm_counts.COUNT_NAMES, counts, strict=True):
            mapping[f"hero|{arm}|{name}"] = count
    services.redis.hset(keys.arm_counts("daily", arm_counts.EXPERIMENT_SCOPE, 0), mapping=mapping)


def test_an_ab_test_without_holdout_is_compared_with_its_first_created_variant(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a"), variant("b"), variant("c")])
    store_block(services, [variant("c"), variant("b"), variant("a")])  # re-listed
    seed_arms(services, {"a": (400, 300, 40), "b": (400, 250, 60), "c": (400, 300, 30)})
    found = hero_comparisons(client, admin_headers)
    assert [(c["arm"], c["control"]) for c in found] == [("b", "a"), ("c", "a")]
    assert all(c["p_value_holm"] >= c["p_value"] for c in found)
    b = found[0]
    assert (b["metric"], b["arm_successes"], b["arm_trials"]) == ("click_rate", 60, 400)
    assert b["probability_to_beat_control"] > 0.95
    state = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    assert state.get_json()["control"] == "a"


def test_any_variant_can_be_named_the_control(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a"), variant("b")], experiment={"holdout": 0.1, "control": "b"})
    seed_arms(services, {"a": (400, 300, 40), "b": (400, 300, 60), "holdout": (50, 40, 2)})
    found = hero_comparisons(client, admin_headers)
    assert [(c["arm"], c["control"]) for c in found] == [("a", "b"), ("holdout", "b")]


@pytest.mark.parametrize(
    ("control", "holdout", "problem"),
    [
        ("zzz", 0.1, "'zzz' is neither a variant of the block nor `holdout`"),
        ("holdout", 0.0, "which needs a holdout share above 0"),
    ],
)
def test_a_control_that_is_not_an_arm_is_refused_with_a_pointer(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    control: str,
    holdout: float,
    problem: str,
) -> None:
    before = store_block(services, [variant("a"), variant("b")])
    body = {
        **{k: v for k, v in before.model_dump(mode="json").items() if k not in BLOCK_SERVER_FIELDS},
        "experiment": {"holdout": holdout, "control": control},
    }
    response = client.put("/api/v1/campaigns/daily/blocks/hero", json=body, headers=admin_headers)
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert error["pointer"] == "/experiment/control"
    assert problem in error["detail"]
    assert services.campaigns.require_block("daily", "hero").version == before.version


def test_the_variant_order_is_kept_whatever_the_list_order(services: Services) -> None:
    first = store_block(services, [variant("a"), variant("b")])
    assert first.variant_order == ["a", "b"]
    reordered = store_block(services, [variant("c"), variant("b"), variant("a")])
    assert reordered.variant_order == ["a", "b", "c"]
    dropped = store_block(services, [variant("c"), variant("b")])
    assert dropped.variant_order == ["b", "c"]
    again = store_block(services, [variant("a"), variant("c"), variant("b")])
    assert again.variant_order == ["b", "c", "a"]  # removed and added again: new
    assert again.first_created({"a", "c"}) == "c"


def test_more_clickers_than_openers_is_compared_and_an_empty_arm_gives_a_reason(
    client: FlaskClient, services: Services, admin_headers: dict[str, str]
) -> None:
    store_block(services, [variant("a"), variant("b")], experiment={"holdout": 0.2})
    seed_arms(services, {"a": (400, 76, 112), "b": (0, 0, 0), "holdout": (100, 60, 8)})
    arms = report(client, admin_headers)["blocks"]["hero"]["arms"]
    assert arms["a"]["click_to_open_rate"] == 56 / 76  # clickers seen opening, per opener
    found = {c["arm"]: c for c in hero_comparisons(client, admin_headers)}
    assert found["a"]["reason"] is None  # clickers per recipient: MPP readers are no problem
    assert found["a"]["p_value_holm"] == found["a"]["p_value"]  # the only test made
    assert found["b"]["reason"] == "b: no trials"
    assert found["b"]["p_value"] is None
    for suffix, query in (("", {"format": "csv"}), (".png", {})):
        response = client.get(
            f"/api/v1/campaigns/daily/report{suffix}", headers=admin_headers, query_string=query
        )
        assert response.status_code == 200
    state = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    assert state.status_code == 200


def test_a_block_not_known_is_compared_with_its_holdout_else_its_fallback() -> None:
    assert control_arm({"item-1", "holdout", "_fallback"}) == "holdout"
    assert control_arm({"item-1", "_fallback"}) == "_fallback"
    assert control_arm({"item-1", "item-2"}) is None
