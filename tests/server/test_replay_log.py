"""The offline replay on the emails Blanco kept (models/newsletter/replay_log.py and
``blanco replay``): the exported log says what each email showed, what was clicked and bought,
and which rankings were explored; the command replays both rankings on it."""

from __future__ import annotations

import datetime as dt
import io
import json

from flask.testing import FlaskClient

from models.newsletter.replay import LoggedEmail
from models.newsletter.replay_log import export_log
from models.storage import keys
from server.cli.replay import run_replay
from server.services import Services
from tests.factories import AdminApi, FakeClock, landing
from tests.newsletter_fixtures import (
    click_url,
    item,
    record_send,
    slot_url,
    store_newsletter,
    store_subscriber,
)
from tests.user_agents import BROWSER, IOS_MAIL

PEOPLE = [f"r{n}" for n in range(12)]


def kept_log(services: Services, clock: FakeClock) -> list[LoggedEmail]:
    """The daily newsletter's log of kept emails, as `blanco replay` exports it."""
    settings = services.settings
    return export_log(
        services.redis,
        "daily",
        pseudonym=services.signer.pseudonym,
        rates=settings.exchange_rates,
        max_ages=settings.max_score_ages,
        now=clock.now,
    )


def test_the_kept_emails_replay_against_todays_ranking(
    client: FlaskClient, services: Services, ingest_headers: dict[str, str], clock: FakeClock
) -> None:
    store_newsletter(
        services,
        [item("lisbon", "city"), item("crete", "beach"), item("alps", "ski")],
        slots=2,
        ranking={"exploration_share": 0.5},
    )
    for rid in PEOPLE:
        store_subscriber(services, rid, scores={"affinity:city": 0.9, "affinity:beach": 0.4})
    api = AdminApi(client, ingest_headers)
    expected: dict[tuple[str, str], tuple[tuple[str, ...], set[str], dict[str, float]]] = {}
    for day in (23, 24, 25):
        clock.now = dt.datetime(2026, 11, day, 9, tzinfo=dt.UTC)
        send = record_send(services, dt.date(2026, 11, day), PEOPLE).id
        clock.advance(hours=1)
        for n, rid in enumerate(PEOPLE):
            for slot in (1, 2):
                client.get(slot_url(services, rid, slot, send), headers=IOS_MAIL)
            stored = json.loads(services.redis.hget(keys.rankings(rid), f"daily/{send}") or "{}")
            shown = tuple(i for i, _ in stored["items"])
            clicked, bought = set(), {}
            if (n + day) % 3 == 0:  # a third click slot 1 each day, and one in two of them buys
                target = landing(client.get(click_url(services, rid, 1, send), headers=BROWSER))
                clicked.add(target.rsplit("/", 1)[1])
                if n % 2 == 0:
                    order = {
                        "recipient_id": rid,
                        "order_id": f"{rid}-{day}",
                        "amount": "100",
                        "currency": "EUR",
                    }
                    assert api.post("/conversions", json=order).status_code == 201
                    bought[shown[0]] = 100.0
            expected[(rid, send)] = (shown, clicked, bought)

    log = kept_log(services, clock)
    assert len(log) == len(expected) == 36
    for email in log:
        shown, clicked, bought = expected[(email.recipient_id, email.day.isoformat())]
        assert email.shown == shown
        assert email.clicked == clicked
        assert dict(email.bought) == bought
        assert email.scores["affinity:city"] == 0.9
    explored = [e for e in log if e.explored]
    assert 0 < len(explored) < len(log)  # half of the recipients' days, drawn per recipient

    out, err = io.StringIO(), io.StringIO()
    assert run_replay(services, "daily", 1, out, err) == 0
    document = json.loads(out.getvalue())
    assert document["held_out_from"] == "2026-11-25"
    assert document["explored"] == sum(1 for e in explored if e.day.isoformat() == "2026-11-25")
    assert set(document["policies"]) == {
        "today: priority × affinity",
        "the newsletter's ranking rules",
    }
    assert "replayed" in err.getvalue()


def test_without_explored_emails_the_replay_says_what_to_set(
    client: FlaskClient, services: Services
) -> None:
    store_newsletter(services, [item("lisbon", "city")], slots=1)
    store_subscriber(services, "anna")
    client.get(slot_url(services, "anna", 1), headers=IOS_MAIL)
    err = io.StringIO()
    assert run_replay(services, "daily", 1, io.StringIO(), err) == 1
    assert "exploration_share" in err.getvalue()


def test_rankings_made_without_a_send_are_left_out_of_the_log(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    store_newsletter(services, [item("lisbon", "city")], slots=1)
    store_subscriber(services, "anna")
    clock.now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    send = record_send(services, dt.date(2026, 11, 24), ["anna"]).id
    client.get(slot_url(services, "anna", 1, send), headers=IOS_MAIL)
    clock.now = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
    client.get(slot_url(services, "anna", 1), headers=IOS_MAIL)  # no send: keyed day:
    assert services.redis.hexists(keys.rankings("anna"), "daily/day:2026-11-25")
    log = kept_log(services, clock)
    assert [(e.recipient_id, e.day.isoformat()) for e in log] == [("anna", send)]
