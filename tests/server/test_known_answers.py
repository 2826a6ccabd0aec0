"""The synthetic base with known answers, driven over HTTP: a three-arm experiment with a holdout,
opened and clicked from every client class, with a ledger of what each request was shown. Every
figure of the report equals the ledger's, and the statistics equal scipy's, computed here
another way."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from scipy import integrate, stats

from benchmarks.synthetic import (
    THRESHOLD,
    ArmFigures,
    Visit,
    expected_figures,
    expected_segments,
    expected_verdicts,
    orders,
    recipients,
    spreadsheet_cell,
    subscribers,
    visits,
)
from models.campaigns.specs import CampaignSpec
from models.measurement.stats import APPROX_RELATIVE_ERROR
from server.services import EXTENSION, Services
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    FakeClock,
    corner_color,
    hex_rgb,
    jsonl,
    landing,
    store_block,
    store_recipient,
    variant,
)
from tests.newsletter_fixtures import newsletter_document

PEOPLE = 500
SEED = 20261206
COLOURS = {"a": "#CC0000", "b": "#00AA00", "c": "#0000CC"}


def drive(client: FlaskClient, services: Services, script: list[Visit]) -> list[tuple[Visit, str]]:
    """Send every visit; the arm each was shown (a ``HEAD`` open has no image: its arm is the
    one its recipient's other requests show, which stays put)."""
    by_colour: dict[tuple[int, ...], str] = {hex_rgb(c): arm for arm, c in COLOURS.items()}
    by_colour[hex_rgb(FALLBACK_BACKGROUND)] = "holdout"
    by_target = {f"https://shop.example/{arm}": arm for arm in COLOURS} | {FALLBACK_URL: "holdout"}
    seen: list[tuple[Visit, str | None]] = []
    for visit in script:
        token = services.signer.sign(visit.recipient)
        path = "/i/daily/hero.png" if visit.event == "open" else "/c/daily/hero"
        response = client.open(
            path,
            method=visit.client.method,
            query_string={"r": token},
            headers=dict(visit.client.headers),
        )
        assert response.status_code in (200, 302), (visit, response.status_code)
        if visit.event == "click":
            arm: str | None = by_target[landing(response)]
        elif visit.client.method == "HEAD":
            arm = None
        else:
            arm = by_colour[corner_color(response.data)]
        seen.append((visit, arm))
    arm_of: dict[str, set[str]] = defaultdict(set)
    for visit, arm in seen:
        if arm is not None:
            arm_of[visit.recipient].add(arm)
    assert all(len(arms) == 1 for arms in arm_of.values())  # nobody changed arm
    return [(visit, arm or next(iter(arm_of[visit.recipient]))) for visit, arm in seen]


@pytest.fixture
def ledger(client: FlaskClient, services: Services) -> dict[str, ArmFigures]:
    store_block(
        services,
        [variant(arm, background=colour) for arm, colour in COLOURS.items()],
        experiment={"holdout": 0.1},
    )
    people = recipients(PEOPLE)
    for person in people:
        store_recipient(services, person, {"first_name": "Sam"})
    return expected_figures(drive(client, services, visits(people, SEED)))


def test_every_count_and_exact_figure_equals_the_ledgers(
    client: FlaskClient, ledger: dict[str, ArmFigures], admin_headers: dict[str, str]
) -> None:
    report = client.get("/api/v1/campaigns/daily/report", headers=admin_headers).get_json()
    totals = {row["variant"]: row for row in report["totals"]}
    arms = report["blocks"]["hero"]["arms"]
    assert set(totals) == set(arms) == set(ledger) == {"a", "b", "c", "holdout"}
    every = list(ledger.values())  # the script has every case the rules are about
    assert all(
        sum(getattr(f, name) for f in every) > 20 for name in ("machine_opens", "bot_clicks")
    )
    assert sum(len(f.clicked - f.opened) for f in every) > 20  # clickers never seen opening
    assert sum(f.opens - len(f.reached) for f in every) > 50  # re-opens and prefetches
    for arm, expected in ledger.items():
        row = totals[arm]
        counted = {name: row[name] for name in ("opens", "human_opens", "machine_opens")}
        assert counted == {
            "opens": expected.opens,
            "human_opens": expected.human_opens,
            "machine_opens": expected.machine_opens,
        }, arm
        assert (row["clicks"], row["bot_clicks"]) == (expected.clicks, expected.bot_clicks), arm
        exact = {name: arms[arm][name] for name in expected.exact()}
        assert exact == expected.exact(), arm
        assert arms[arm]["click_rate"] == len(expected.clicked) / len(expected.reached)
        opened = len(expected.opened)
        assert arms[arm]["click_to_open_rate"] == len(expected.clicked & expected.opened) / opened
        within = 3 * APPROX_RELATIVE_ERROR * opened + 1
        assert abs(row["approx_unique_opens"] - opened) <= within, arm


def test_the_statistics_equal_scipys(
    client: FlaskClient, ledger: dict[str, ArmFigures], admin_headers: dict[str, str]
) -> None:
    state = client.get("/api/v1/campaigns/daily/blocks/hero/experiment", headers=admin_headers)
    view = state.get_json()
    assert view["control"] == "holdout"
    control = ledger["holdout"]
    compared = {c["arm"]: c for c in view["comparisons"]}
    assert set(compared) == {"a", "b", "c"}
    p_values = {}
    for arm, comparison in compared.items():
        expected = ledger[arm]
        successes, trials = len(expected.clicked), len(expected.reached)
        control_successes, control_trials = len(control.clicked), len(control.reached)
        assert (comparison["arm_successes"], comparison["arm_trials"]) == (successes, trials)
        assert comparison["metric"] == "click_rate"
        p_values[arm] = comparison["p_value"]
        if comparison["test"] == "fisher":
            table = [
                [successes, trials - successes],
                [control_successes, control_trials - control_successes],
            ]
            assert comparison["p_value"] == pytest.approx(stats.fisher_exact(table).pvalue)
        else:
            pooled = (successes + control_successes) / (trials + control_trials)
            spread = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / control_trials))
            z = (successes / trials - control_successes / control_trials) / spread
            assert comparison["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
        assert comparison["probability_to_beat_control"] == pytest.approx(
            beats(successes, trials, control_successes, control_trials), abs=1e-6
        )
    for arm, adjusted in holm_adjusted(p_values).items():
        assert compared[arm]["p_value_holm"] == pytest.approx(adjusted)


def beats(successes: int, trials: int, control_successes: int, control_trials: int) -> float:
    """P(X > Y) for X ~ Beta(1 + s, 1 + t - s) and Y the control's, by numerical integration
    of X's density times Y's distribution function."""
    arm = stats.beta(1 + successes, 1 + trials - successes)
    control = stats.beta(1 + control_successes, 1 + control_trials - control_successes)
    value, _ = integrate.quad(lambda x: arm.pdf(x) * control.cdf(x), 0, 1, limit=200)
    return float(value)


def holm_adjusted(p_values: dict[str, Any]) -> dict[str, float]:
    """Holm's step-down adjustment, written out: sort, multiply by m, m-1, …, keep monotone."""
    order = sorted(p_values, key=lambda arm: p_values[arm])
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, arm in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[arm]))
        adjusted[arm] = running
    return adjusted


def test_every_recipient_gets_the_segments_worked_out_independently(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app(segmentation_exchange_rates="USD=0.92,GBP=1.17")
    _, key = app.extensions[EXTENSION].api_keys.create("analyst", ["admin"])
    api = AdminApi(app.test_client(), {"Authorization": f"Bearer {key}"})
    people = recipients(300)
    made = orders(people, clock.now, SEED)
    with_profile = people[::2]  # the others are guest buyers, known only by their orders
    profiles = [{"recipient_id": p, "attributes": {"first_name": "Sam"}} for p in with_profile]
    for path, rows in (
        ("/transactions/bulk", [o.document() for o in made]),
        ("/profiles/bulk", profiles),  # after their orders
    ):
        stored = api.post(path, data=jsonl(*rows), content_type="application/x-ndjson")
        assert stored.get_json()["rejected"] == 0, stored.get_json()
    run = api.post("/segmentation/run", json={"at": clock.now.isoformat()})
    assert run.status_code == 200
    answers = expected_segments(made, people, clock.now)
    lifecycles = Counter[str]()
    for person in people:
        found = api.get(f"/recipients/{person}/profile")
        expected = answers[person]
        if isinstance(expected, str):  # a prospect: known only if it has a profile
            assert found.status_code == (200 if person in with_profile else 404), person
            if person in with_profile:
                assert found.get_json()["attributes"]["lifecycle_stage"] == "prospect", person
                lifecycles["prospect"] += 1
            continue
        assert found.status_code == 200, person  # guest buyers get a profile of their segments
        attributes = found.get_json()["attributes"]
        assert (
            attributes["rfm_recency"],
            attributes["rfm_frequency"],
            attributes["rfm_monetary"],
            attributes["rfm_segment"],
            attributes["lifecycle_stage"],
        ) == (
            expected.recency,
            expected.frequency,
            expected.monetary,
            expected.segment,
            expected.lifecycle,
        ), person
        lifecycles[expected.lifecycle] += 1
    assert set(lifecycles) == {"prospect", "new_customer", "active", "lapsing", "lapsed"}
    assert any(o.refund for o in made)
    assert any(o.currency == "CHF" for o in made)


@pytest.mark.parametrize("rotation", ["persistent", "per_send"])
def test_every_send_has_the_audience_worked_out_independently(
    client: FlaskClient,
    services: Services,
    admin_headers: dict[str, str],
    clock: FakeClock,
    rotation: str,
) -> None:
    api = AdminApi(client, admin_headers)
    services.campaigns.create_campaign(CampaignSpec(id="daily"))
    document = newsletter_document(
        audience={"score": "travel_propensity", "gte": THRESHOLD},
        holdout=0.2,
        holdout_rotation=rotation,
    )
    assert api.put("/campaigns/daily/newsletter", json=document).status_code in (200, 201)
    base = subscribers(recipients(400), clock.now, SEED)
    scored = [row for s in base if (row := s.scores()) is not None]
    for path, rows in (("/profiles/bulk", [s.profile() for s in base]), ("/scores/bulk", scored)):
        stored = api.post(path, data=jsonl(*rows), content_type="application/x-ndjson")
        assert stored.get_json()["rejected"] == 0, stored.get_json()
    erased = [s.recipient for s in base if s.erased]
    for person in erased:
        assert api.delete(f"/recipients/{person}").status_code == 204
        assert api.get(f"/recipients/{person}/token").status_code == 410
    suppressed = [s.recipient for s in base if s.suppressed]
    listed = api.post(
        "/campaigns/daily/newsletter/suppressions", json={"recipient_ids": suppressed}
    )
    assert listed.get_json()["erased"] == len(set(suppressed) & set(erased))
    names = {s.recipient: spreadsheet_cell(s.first_name) for s in base}
    holdouts, ins = [], []
    for day in ("2026-11-23", "2026-11-24"):  # today (10:00 CET, later than now) and tomorrow
        answer = api.post("/campaigns/daily/sends", json={"date": day}, buffered=True)
        assert answer.status_code == 200
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        audience = {row["recipient_id"] for row in rows}
        assert all(row["first_name"] == names[row["recipient_id"]] for row in rows)
        assert sum(row["first_name"] != "Sam" for row in rows) >= 3  # hostile names among them
        send = api.get(f"/campaigns/daily/sends/{day}").get_json()
        held = set(api.get(f"/campaigns/daily/sends/{day}/holdout").get_json()["recipient_ids"])
        send_time = dt.datetime.fromisoformat(send["send_time"])
        verdicts = expected_verdicts(base, max(clock.now, send_time))
        outcomes = Counter(verdicts.values())
        assert audience | held == {r for r, v in verdicts.items() if v == "in"}, day
        assert not audience & held
        assert send["counts"] == {
            "considered": len(base) - len(erased),
            "audience": len(audience),
            "holdout": len(held),
            "suppressed": outcomes["suppressed"],
            "no_consent": outcomes["no_consent"],
            "not_selected": outcomes["not_selected"],
        }
        assert 0.1 < len(held) / outcomes["in"] < 0.3  # a fifth, give or take the draw
        holdouts.append(held)
        ins.append(audience | held)
    # tomorrow's send judges freshness at its own time: fewer scores are fresh by then
    assert (
        outcomes["not_selected"]
        > Counter(expected_verdicts(base, clock.now).values())["not_selected"]
    )
    both = ins[0] & ins[1]  # in both sends: held out of both, or of one only when it rotates
    moved = (holdouts[0] ^ holdouts[1]) & both
    assert len(both) > 30
    if rotation == "persistent":
        assert not moved
    else:
        assert len(moved) > 0.2 * len(holdouts[0] & both)
