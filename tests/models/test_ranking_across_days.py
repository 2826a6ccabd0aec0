"""Ranking across days (docs/newsletter.md, "Across days"): fatigue, exclusions, stock and
availability, and novelty, with known answers."""

from __future__ import annotations

import datetime as dt

from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Ranking
from models.newsletter.recipient_history import PastSend, RecipientHistory, Unclicked
from models.newsletter.slot_ranking import rank_items
from models.recipients.recipient_reads import RecipientData
from tests.newsletter_fixtures import at, item

NOW = at(26)
ANNA = RecipientData(scores={"affinity:city": 0.9, "affinity:beach": 0.6, "affinity:ski": 0.3})
FEED = [
    item("lisbon", "city"),  # 0.9
    item("crete", "beach"),  # 0.6
    item("alps", "ski"),  # 0.3
]


def sent(day: int, *items: str) -> PastSend:
    """A past send of 10:00 on ``day`` November whose ranking showed ``items``."""
    return PastSend(f"daily/2026-11-{day}", at(day), items)


def ranked(
    history: RecipientHistory,
    rules: Ranking | None = None,
    feed: list[ContentItem] = FEED,
    slots: int = 1,
    recipient: RecipientData | None = ANNA,
) -> list[str]:
    ranking = rank_items(feed, rules or Ranking(), recipient, "anna", NOW, slots, 0, history)
    return [r.id for r in ranking.items]


def test_an_ignored_item_fades_by_the_decay_per_send() -> None:
    # lisbon 0.9 × 0.5 = 0.45 after one ignored send: still above crete (0.6)? No: below it
    once = RecipientHistory((sent(25, "lisbon"),))
    assert ranked(RecipientHistory()) == ["lisbon"]
    assert ranked(once) == ["crete"]
    gentle = Ranking(fatigue_decay=0.8)  # 0.9 × 0.8 = 0.72 > 0.6
    assert ranked(once, gentle) == ["lisbon"]
    twice = RecipientHistory((sent(25, "lisbon"), sent(24, "lisbon")))
    assert ranked(twice, gentle) == ["crete"]  # 0.9 × 0.64 = 0.576 < 0.6


def test_a_click_since_the_send_resets_the_fatigue() -> None:
    clicked = RecipientHistory((sent(25, "lisbon"),), clicked={"lisbon": at(25, 12).timestamp()})
    assert ranked(clicked) == ["lisbon"]
    clicked_before = RecipientHistory(
        (sent(25, "lisbon"),), clicked={"lisbon": at(24, 12).timestamp()}
    )
    assert ranked(clicked_before) == ["crete"]


def test_only_the_last_fatigue_sends_count() -> None:
    old = RecipientHistory(
        (sent(25, "crete"), sent(24, "crete"), sent(20, "lisbon")),
    )
    assert ranked(old, Ranking(fatigue_sends=2)) == ["lisbon"]
    assert ranked(old, Ranking(fatigue_sends=3, fatigue_decay=0.9)) == ["lisbon"]
    assert ranked(old, Ranking(fatigue_sends=0)) == ["lisbon"]


def test_never_more_than_max_in_a_row() -> None:
    strong = [item("lisbon", "city", priority=100.0), *FEED[1:]]
    streak = RecipientHistory(tuple(sent(day, "lisbon") for day in (25, 24, 23)))
    assert ranked(streak, Ranking(max_in_a_row=3), strong) == ["crete"]
    assert ranked(streak, Ranking(max_in_a_row=4), strong) == ["lisbon"]
    broken = RecipientHistory((sent(25, "lisbon"), sent(24, "crete"), sent(23, "lisbon")))
    assert ranked(broken, Ranking(max_in_a_row=2), strong) == ["lisbon"]
    assert ranked(streak, Ranking(max_in_a_row=0), strong) == ["lisbon"]


def test_max_in_a_row_holds_whatever_the_fatigue_window() -> None:
    strong = [item("lisbon", "city", priority=100.0), *FEED[1:]]
    streak = RecipientHistory(tuple(sent(day, "lisbon") for day in (25, 24, 23)))
    assert ranked(streak, Ranking(fatigue_sends=0, max_in_a_row=3), strong) == ["crete"]
    assert ranked(streak, Ranking(fatigue_sends=2, max_in_a_row=3), strong) == ["crete"]
    assert ranked(streak, Ranking(fatigue_sends=0, max_in_a_row=4), strong) == ["lisbon"]


def test_a_bought_item_never_returns() -> None:
    bought = RecipientHistory(bought_items=frozenset({"lisbon"}))
    assert ranked(bought, slots=3) == ["crete", "alps"]
    assert ranked(bought, Ranking(exclude_bought=False), slots=3) == ["lisbon", "crete", "alps"]


def test_a_category_rule_leaves_out_every_item_of_a_bought_category() -> None:
    bought = RecipientHistory(bought_categories=frozenset({"city", "ski"}))
    rules = Ranking(exclude_bought_categories=["city"])
    assert ranked(bought, rules, slots=3) == ["crete", "alps"]  # ski has no rule
    assert ranked(bought, slots=3) == ["lisbon", "crete", "alps"]  # no rule at all


def test_a_category_rule_holds_without_exclude_bought() -> None:
    bought = RecipientHistory(
        bought_items=frozenset({"alps"}), bought_categories=frozenset({"city"})
    )
    rules = Ranking(exclude_bought=False, exclude_bought_categories=["city"])
    assert ranked(bought, rules, slots=3) == ["crete", "alps"]  # alps: no item rule


def test_sold_out_and_unavailable_items_drop_out() -> None:
    feed = [
        item("lisbon", "city", stock=0),
        item("crete", "beach", available=False),
        item("alps", "ski", stock=3),
    ]
    assert ranked(RecipientHistory(), feed=feed, slots=3) == ["alps"]


def test_novelty_reserves_slots_for_items_never_shown() -> None:
    feed = [
        item("lisbon", "city", priority=3.0),
        item("rome", "city2", priority=3.0),
        item("crete", "beach", priority=1.0),
        item("alps", "ski", priority=0.1),
    ]
    seen = RecipientHistory((sent(20, "lisbon", "rome", "crete"),))  # outside the fatigue
    rules = Ranking(fatigue_sends=0, novelty_share=0.3)
    assert ranked(seen, rules, feed, slots=3) == ["lisbon", "rome", "alps"]  # one new item
    assert ranked(seen, Ranking(fatigue_sends=0), feed, slots=3) == ["lisbon", "rome", "crete"]


def test_a_generic_ranking_uses_no_history() -> None:
    bought = RecipientHistory((sent(25, "lisbon"),), bought_items=frozenset({"lisbon"}))
    assert sorted(ranked(bought, recipient=None, slots=3)) == ["alps", "crete", "lisbon"]


def test_the_streak_and_count_of_an_item() -> None:
    history = RecipientHistory(
        (sent(25, "a"), sent(24, "a"), sent(23, "b"), sent(22, "a")),
        clicked={"b": at(23, 11).timestamp()},
    )
    assert history.unclicked("a", 5, 5) == Unclicked(shown=3, in_a_row=2)
    assert history.unclicked("a", 1, 1) == Unclicked(shown=1, in_a_row=1)
    assert history.unclicked("b", 5, 5) == Unclicked(shown=0, in_a_row=0)


def test_each_rule_counts_over_its_own_window() -> None:
    history = RecipientHistory((sent(25, "a"), sent(24, "a"), sent(23, "a"), sent(22, "b")))
    assert history.unclicked("a", 0, 3) == Unclicked(shown=0, in_a_row=3)
    assert history.unclicked("a", 1, 3) == Unclicked(shown=1, in_a_row=3)
    assert history.unclicked("a", 5, 2) == Unclicked(shown=3, in_a_row=2)
    assert history.unclicked("a", 5, 0) == Unclicked(shown=3, in_a_row=0)
    assert history.ever_shown == frozenset({"a", "b"})
    assert isinstance(sent(25).ranked_at, dt.datetime)


def test_an_explored_ranking_draws_the_eligible_items_at_random() -> None:
    rules = Ranking(exploration_share=0.5)
    feed = [item(f"i{n}", f"c{n}") for n in range(8)] + [item("gone", "c9", stock=0)]
    explored = 0
    first_items = set()
    for n in range(200):
        ranking = rank_items(feed, rules, ANNA, f"r{n}", NOW, 3, 0, RecipientHistory())
        assert "gone" not in [r.id for r in ranking.items]  # still only eligible items
        explored += ranking.explored
        if ranking.explored:
            first_items.add(ranking.items[0].id)
    assert 70 < explored < 130  # about half of the recipients
    assert len(first_items) >= 6  # not the weights' order
    never = rank_items(feed, Ranking(), ANNA, "r1", NOW, 3, 0, RecipientHistory())
    generic = rank_items(feed, Ranking(exploration_share=0.5), None, "r1", NOW, 3)
    assert not never.explored
    assert not generic.explored
    stored = rank_items(feed, Ranking(exploration_share=0.5), ANNA, "r0", NOW, 3)
    assert type(stored).from_json(stored.to_json()).explored == stored.explored
