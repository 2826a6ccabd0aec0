"""Ranking a feed for one recipient (docs/newsletter.md, "Slots filled at open"): items valid at
the moment whose targeting matches, by priority × affinity (else the default affinity), at most
``max_per_category`` per category (0: no limit), ties broken by a stable hash per recipient; a
generic ranking takes untargeted items by priority only."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

from models.newsletter import slot_ranking
from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Ranking
from models.newsletter.slot_ranking import SlotRanking, rank_items
from models.recipients.recipient_reads import RecipientData
from tests.newsletter_fixtures import at, item

NOW = at(23)
RULES = Ranking()


def ids(
    items: list[ContentItem],
    recipient: RecipientData | None,
    key: str = "anna",
    rules: Ranking = RULES,
) -> list[str]:
    ranking = rank_items(items, rules, recipient, key, NOW, slots=len(items))
    return [ranked.id for ranked in ranking.items]


def test_priority_times_affinity_else_the_default_affinity() -> None:
    items = [
        item("beach", "beach", priority=1.0),  # 1.0 × 0.3
        item("city", "city", priority=0.5),  # 0.5 × 0.9
        item("ski", "ski", priority=0.8),  # 0.8 × the default 0.5
    ]
    anna = RecipientData(scores={"affinity:beach": 0.3, "affinity:city": 0.9})
    assert ids(items, anna) == ["city", "ski", "beach"]
    other_default = Ranking(default_affinity=0.1)
    assert ids(items, anna, rules=other_default) == ["city", "beach", "ski"]


def test_only_items_valid_now_and_matching_their_targeting() -> None:
    items = [
        item("ended", valid_until=NOW - dt.timedelta(seconds=1)),
        item("later", valid_from=NOW + dt.timedelta(seconds=1)),
        item("now", valid_from=NOW - dt.timedelta(days=1), valid_until=NOW + dt.timedelta(days=1)),
        item("vip", when={"segment": "vip"}),
        item("always"),
    ]
    assert sorted(ids(items, RecipientData(segments=frozenset({"vip"})))) == [
        "always",
        "now",
        "vip",
    ]
    assert sorted(ids(items, RecipientData())) == ["always", "now"]


def test_at_most_max_per_category_and_zero_is_no_limit() -> None:
    items = [item(f"b{n}", "beach", priority=2.0 - n / 10) for n in range(3)] + [
        item("c0", "city", priority=0.1)
    ]
    anna = RecipientData(scores={"affinity:beach": 1.0, "affinity:city": 1.0})
    assert ids(items, anna) == ["b0", "c0"]
    assert ids(items, anna, rules=Ranking(max_per_category=2)) == ["b0", "b1", "c0"]
    assert ids(items, anna, rules=Ranking(max_per_category=0)) == ["b0", "b1", "b2", "c0"]


def test_ties_are_broken_by_a_stable_hash_per_recipient() -> None:
    items = [item(f"i{n:02d}", priority=1.0) for n in range(12)]
    orders = {key: ids(items, RecipientData(), key) for key in ("anna", "bram", "chloe")}
    for key, order in orders.items():
        assert ids(items, RecipientData(), key) == order  # stable for one recipient
        assert ids(list(reversed(items)), RecipientData(), key) == order  # not the feed's order
    assert len({tuple(order) for order in orders.values()}) == 3  # but not the same for all


def test_a_generic_ranking_is_untargeted_items_by_priority_only() -> None:
    items = [
        item("low", "beach", priority=0.2),
        item("high", "ski", priority=0.9),
        item("vip", "city", priority=5.0, when={"segment": "vip"}),
        item("mid", "city", priority=0.5),
    ]
    ranking = rank_items(items, RULES, None, "anna", NOW, slots=4)
    assert ranking.generic
    assert [ranked.id for ranked in ranking.items] == ["high", "mid", "low"]


def test_a_stored_ranking_reads_back_equal_and_the_same_document_once() -> None:
    ranking = rank_items([item("a"), item("b", priority=2)], RULES, None, "anna", NOW, slots=2)
    document = ranking.to_json()
    assert json.loads(document)["items"] == [
        ["b", "https://shop.example/items/b"],
        ["a", "https://shop.example/items/a"],
    ]
    assert SlotRanking.from_json(document) is ranking  # written by this worker: kept
    slot_ranking._known.clear()  # as in another worker
    read = SlotRanking.from_json(document)
    assert read == ranking
    assert read is not ranking
    assert SlotRanking.from_json(document) is read
    other = json.dumps({**json.loads(document), "generic": False})
    assert SlotRanking.from_json(other) == replace(ranking, generic=False)
