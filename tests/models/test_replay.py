"""The offline replay (models/newsletter/replay.py): known answers on a hand-made log, and on the
seeded synthetic world that the benchmark shares, the new ranking beats today's."""

from __future__ import annotations

import datetime as dt

from benchmarks.synthetic_newsletter import world
from models.newsletter.newsletters import Ranking
from models.newsletter.replay import LoggedEmail, learned_popularity, replay
from tests.newsletter_fixtures import item

TODAY = Ranking().priority_times_affinity()
ITEMS = [item("lisbon", "city"), item("crete", "beach")]
FONDNESS = {"affinity:city": 0.9, "affinity:beach": 0.6}


def email(day: int, shown: str, clicked: bool = False, bought: float = 0.0) -> LoggedEmail:
    at = dt.datetime(2026, 11, day, 10, tzinfo=dt.UTC)
    return LoggedEmail(
        "anna",
        at.date(),
        at,
        (shown,),
        frozenset({shown}) if clicked else frozenset(),
        {shown: bought} if bought else {},
        FONDNESS,
        "sun",
    )


def test_a_policy_counts_only_the_logged_slots_it_would_have_shown() -> None:
    log = [
        email(1, "lisbon"),  # training: ignored
        email(2, "lisbon", clicked=True, bought=289.0),  # held out from here
        email(3, "crete", clicked=True),
        email(4, "lisbon"),
    ]
    found = replay(log, ITEMS, {"today": TODAY, "new": Ranking()}, dt.date(2026, 11, 2))
    # today always ranks Lisbon (0.9 > 0.6): days 2 and 4 match, one click and one order
    assert (found["today"].matched, found["today"].clicks, found["today"].orders) == (2, 1, 1)
    assert found["today"].revenue == 289.0
    # new: day 2, Lisbon was ignored on day 1 (0.45 < 0.6): Crete, no match; day 3 Crete, a
    # click; day 4 Lisbon was bought on day 2: Crete again, no match
    assert (found["new"].matched, found["new"].clicks, found["new"].orders) == (1, 1, 0)
    rate = found["new"].rate(found["new"].clicks)
    assert rate is not None
    assert rate[0] == 1.0


def test_popularity_is_learned_from_the_training_days_only() -> None:
    log = [email(1, "lisbon", clicked=True), email(2, "crete", clicked=True)]
    learned = learned_popularity(e for e in log if e.day < dt.date(2026, 11, 2))
    assert learned["sun"].items["lisbon"].clickers == 1
    assert "crete" not in learned["sun"].items
    assert learned[None].items["lisbon"].shown == 1


def test_on_the_synthetic_world_the_new_ranking_earns_more_than_todays() -> None:
    synthetic = world(recipients=1500, days=14, held_out_days=4, seed=7)
    found = replay(
        synthetic.log, synthetic.items, {"today": TODAY, "new": Ranking()}, synthetic.held_out_from
    )
    today, new = found["today"], found["new"]
    assert min(today.matched, new.matched) > 300  # about a 24th of the held-out slots each
    today_rate, new_rate = today.rate(today.clicks), new.rate(new.clicks)
    assert today_rate is not None
    assert new_rate is not None
    assert new_rate[1] > today_rate[0]  # the new lower bound above today's rate
    assert new.revenue / new.matched > today.revenue / today.matched
