"""Segmentation as pure functions: quintiles, RFM segments, lifecycle stages and personas, checked
against a customer base worked out by hand (tests/customer_fixtures.py)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from models.campaigns.conditions import Audience, Condition
from models.recipients.segmentation import (
    CustomerStats,
    LifecycleThresholds,
    Order,
    PersonaRules,
    Population,
    RfmScores,
    assign_persona,
    customer_stats,
    lifecycle_stage,
    orders_from_stored,
    quintile,
    rfm_segment,
    segment_changes,
    segment_recipient,
)
from tests.customer_fixtures import (
    EXPECTED_LIFECYCLE,
    EXPECTED_RFM,
    NOW,
    ORDERS,
    PROSPECTS,
)

EUR = {"EUR": Decimal(1)}
CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
THRESHOLDS = LifecycleThresholds(new_days=30, active_days=90, lapsed_days=180)
NO_RULES = PersonaRules(rules=[])


def fixture_stats() -> dict[str, CustomerStats | None]:
    """Each fixture recipient's stats at NOW."""
    found: dict[str, CustomerStats | None] = {}
    for rid, orders in ORDERS.items():
        found[rid] = customer_stats(
            [
                Order(NOW - dt.timedelta(days=d, hours=1), Decimal(amount), "EUR")
                for d, amount in orders
            ],
            NOW,
            EUR,
        )
    for rid in PROSPECTS:
        found[rid] = customer_stats([], NOW, EUR)
    return found


def stats(orders: int = 1, first: int = 10, last: int = 10, spent: int = 10) -> CustomerStats:
    """Stats of a customer whose first and last orders were ``first`` and ``last`` days ago."""
    return CustomerStats(
        orders=orders,
        first_order_at=NOW - dt.timedelta(days=first),
        last_order_at=NOW - dt.timedelta(days=last),
        monetary=Decimal(spent),
    )


# quintiles


def test_ten_distinct_values_give_two_per_score() -> None:
    values = [float(v) for v in range(10, 110, 10)]
    assert [quintile(v, values) for v in values] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [quintile(v, values, higher_is_better=False) for v in values] == [
        5,
        5,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    ]


def test_five_distinct_values_score_one_to_five() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [quintile(v, values) for v in values] == [1, 2, 3, 4, 5]


def test_tied_values_share_the_score_of_their_average_rank() -> None:
    assert {quintile(7.0, [7.0] * 10)} == {3}
    values = [1.0] * 6 + [2.0] * 2 + [3.0] * 2
    assert (quintile(1.0, values), quintile(2.0, values), quintile(3.0, values)) == (2, 4, 5)


def test_a_single_customer_is_in_the_middle() -> None:
    assert quintile(42.0, [42.0]) == 3
    assert quintile(1.0, []) == 1


# the fixture customer base


def test_fixture_rfm_scores_and_segments_match_the_hand_calculation() -> None:
    found = fixture_stats()
    population = Population([s for s in found.values() if s is not None], NOW)
    assert len(population) == 10
    for rid, (r, f, m, segment) in EXPECTED_RFM.items():
        customer = found[rid]
        assert customer is not None, rid
        scores = population.scores(customer)
        assert scores == RfmScores(r, f, m), rid
        assert rfm_segment(scores, customer.orders) == segment, rid


def test_fixture_lifecycle_stages_match_the_hand_calculation() -> None:
    for rid, customer in fixture_stats().items():
        assert lifecycle_stage(customer, NOW, THRESHOLDS) == EXPECTED_LIFECYCLE[rid], rid


def test_fixture_outcomes_carry_attributes_and_owned_segments() -> None:
    found = fixture_stats()
    population = Population([s for s in found.values() if s is not None], NOW)
    c06 = segment_recipient(found["c06"], population, THRESHOLDS, NO_RULES, {}, {}, frozenset())
    assert c06.attributes == {
        "rfm_recency": 2,
        "rfm_frequency": 5,
        "rfm_monetary": 5,
        "rfm_segment": "at_risk",
        "lifecycle_stage": "lapsing",
    }
    assert c06.segments == {"rfm:at_risk", "lifecycle:lapsing"}
    p01 = segment_recipient(None, population, THRESHOLDS, NO_RULES, {}, {}, frozenset())
    assert p01.attributes == {
        "rfm_recency": None,
        "rfm_frequency": None,
        "rfm_monetary": None,
        "rfm_segment": None,
        "lifecycle_stage": "prospect",
    }
    assert p01.segments == {"lifecycle:prospect"}
    assert p01.rfm_segment is None


# the RFM segment table


@pytest.mark.parametrize(
    ("r", "f", "m", "orders", "segment"),
    [
        (5, 1, 5, 1, "new"),
        (4, 5, 5, 1, "new"),
        (3, 1, 1, 1, "potential_loyalist"),
        (5, 5, 5, 9, "champions"),
        (4, 4, 4, 3, "champions"),
        (4, 4, 3, 3, "loyal"),
        (3, 5, 5, 9, "loyal"),
        (3, 3, 3, 2, "loyal"),
        (5, 3, 2, 2, "potential_loyalist"),
        (3, 1, 4, 2, "potential_loyalist"),
        (2, 5, 5, 9, "at_risk"),
        (1, 3, 3, 3, "at_risk"),
        (2, 3, 2, 2, "hibernating"),
        (2, 1, 1, 1, "hibernating"),
        (1, 2, 3, 2, "lost"),
        (1, 1, 1, 1, "lost"),
    ],
)
def test_rfm_segment_table(r: int, f: int, m: int, orders: int, segment: str) -> None:
    assert rfm_segment(RfmScores(r, f, m), orders) == segment


def test_every_score_combination_has_a_segment() -> None:
    seen = {
        rfm_segment(RfmScores(r, f, m), orders)
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
        for orders in (1, 2)
    }
    assert seen == {
        "champions",
        "loyal",
        "potential_loyalist",
        "new",
        "at_risk",
        "hibernating",
        "lost",
    }


# lifecycle boundaries


@pytest.mark.parametrize(
    ("first", "last", "stage"),
    [
        (30, 30, "new_customer"),
        (31, 1, "active"),
        (200, 90, "active"),
        (200, 91, "lapsing"),
        (200, 180, "lapsing"),
        (400, 181, "lapsed"),
    ],
)
def test_lifecycle_thresholds_are_inclusive(first: int, last: int, stage: str) -> None:
    assert lifecycle_stage(stats(2, first, last), NOW, THRESHOLDS) == stage


def test_lifecycle_thresholds_come_from_the_settings() -> None:
    customer = stats(2, first=50, last=50)
    assert lifecycle_stage(customer, NOW, THRESHOLDS) == "active"
    assert lifecycle_stage(customer, NOW, LifecycleThresholds(60, 90, 180)) == "new_customer"
    assert lifecycle_stage(customer, NOW, LifecycleThresholds(7, 14, 49)) == "lapsed"


# customer stats


def test_stats_convert_currencies_and_skip_unknown_ones() -> None:
    orders = [
        Order(NOW - dt.timedelta(days=1), Decimal("10.50"), "EUR"),
        Order(NOW - dt.timedelta(days=3), Decimal("100"), "USD"),
        Order(NOW - dt.timedelta(days=5), Decimal("999"), "JPY"),
    ]
    found = customer_stats(orders, NOW, {"EUR": Decimal(1), "USD": Decimal("0.9")})
    assert found == CustomerStats(
        orders=3,
        first_order_at=NOW - dt.timedelta(days=5),
        last_order_at=NOW - dt.timedelta(days=1),
        monetary=Decimal("100.50"),
    )


def test_orders_after_the_moment_do_not_count() -> None:
    later = Order(NOW + dt.timedelta(hours=1), Decimal(5), "EUR")
    assert customer_stats([later], NOW, EUR) is None
    earlier = Order(NOW - dt.timedelta(days=40), Decimal(5), "EUR")
    found = customer_stats([earlier, later], NOW, EUR)
    assert found is not None
    assert (found.orders, found.monetary, found.recency_days(NOW)) == (1, Decimal(5), 40)


def test_orders_from_stored_skip_unreadable_documents() -> None:
    raw = {
        "o1": json.dumps({"at": "2026-11-01T10:00:00+01:00", "amount": "12.5", "currency": "EUR"}),
        "o2": "not json",
        "o3": json.dumps({"at": "2026-11-01T10:00:00+01:00", "currency": "EUR"}),
        "o4": json.dumps({"at": "yesterday", "amount": "1", "currency": "EUR"}),
    }
    assert orders_from_stored(raw) == [
        Order(
            dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC),
            Decimal("12.5"),
            "EUR",
        )
    ]


# personas


def rules(*pairs: tuple[str, dict[str, Any] | None]) -> PersonaRules:
    """A rule set from (persona, condition) pairs."""
    return PersonaRules.model_validate(
        {
            "rules": [
                {"persona": p} if when is None else {"persona": p, "when": when}
                for p, when in pairs
            ]
        }
    )


def test_first_matching_persona_rule_wins() -> None:
    rule_set = rules(
        ("vip", {"all": [{"attr": "rfm_segment", "eq": "champions"}, {"segment": "newsletter"}]}),
        ("traveller", {"score": "travel_propensity", "gte": 0.7}),
        ("explorer", None),
    )
    champion = Audience(
        now=NOW,
        profile={"rfm_segment": "champions"},
        scores={"travel_propensity": 0.9},
        segments=frozenset({"newsletter"}),
    )
    assert assign_persona(rule_set, champion) == "vip"
    traveller = Audience(now=NOW, scores={"travel_propensity": 0.9})
    assert assign_persona(rule_set, traveller) == "traveller"
    assert assign_persona(rule_set, Audience(now=NOW)) == "explorer"
    assert assign_persona(rule_set.model_copy(update={"rules": []}), traveller) is None


def test_persona_rules_see_the_fresh_rfm_and_lifecycle() -> None:
    rule_set = rules(
        ("loyalist", {"segment": "rfm:champions"}),
        ("sleeper", {"attr": "lifecycle_stage", "eq": "lapsed"}),
    )
    population = Population([stats(9, 300, 1, 900)], NOW)
    stale = frozenset({"rfm:lost", "lifecycle:lapsed", "persona:sleeper", "newsletter"})
    outcome = segment_recipient(
        stats(9, 300, 1, 900), population, THRESHOLDS, rule_set, {}, {}, stale
    )
    # one customer scores 3 everywhere: loyal, not champions; active, not lapsed
    assert outcome.attributes["rfm_segment"] == "loyal"
    assert outcome.attributes["persona"] is None
    assert outcome.segments == {"rfm:loyal", "lifecycle:active"}
    lapsed = segment_recipient(
        stats(9, 300, 200, 900), population, THRESHOLDS, rule_set, {}, {}, frozenset()
    )
    assert lapsed.attributes["persona"] == "sleeper"
    assert "persona:sleeper" in lapsed.segments


def test_without_rules_the_pushed_persona_is_kept() -> None:
    population = Population([], NOW)
    outcome = segment_recipient(
        None, population, THRESHOLDS, NO_RULES, {"persona": "foodie"}, {}, frozenset()
    )
    assert "persona" not in outcome.attributes
    assert outcome.segments == {"lifecycle:prospect", "persona:foodie"}


def test_persona_names_are_slugs() -> None:
    with pytest.raises(ValidationError):
        rules(("Big Spender", None))
    with pytest.raises(ValidationError):
        rules(("vip", {"attr": "x"}))


def test_segment_changes_touch_only_owned_prefixes() -> None:
    current = {"newsletter", "rfm:lost", "lifecycle:active", "persona:x", "vip"}
    stale, added = segment_changes(current, frozenset({"rfm:champions", "lifecycle:active"}))
    assert stale == {"rfm:lost", "persona:x"}
    assert added == {"rfm:champions"}


def test_refunds_are_netted_off_the_monetary_value_and_are_not_orders() -> None:
    bought = Order(NOW - dt.timedelta(days=10), Decimal("100"), "EUR")
    paid_back = Order(NOW - dt.timedelta(days=2), Decimal("30"), "EUR", refund=True)
    stats = customer_stats([bought, paid_back], NOW, EUR)
    assert stats is not None
    assert (stats.orders, stats.monetary, stats.last_order_at) == (1, Decimal("70"), bought.at)
    assert customer_stats([paid_back], NOW, EUR) is None  # a refund alone: still a prospect
    stored = {
        "r": json.dumps(
            {"at": paid_back.at.isoformat(), "amount": "30", "currency": "EUR", "type": "refund"}
        )
    }
    assert orders_from_stored(stored) == [paid_back]


def test_one_day_rule_for_every_within_n_days() -> None:
    """N days is N × 24 h before the moment, bounds included, whatever the zone or midnight;
    RFM recency counts whole 24-hour periods (docs/recipient-data.md, "One day rule")."""
    thresholds = LifecycleThresholds(new_days=30, active_days=90, lapsed_days=180)
    first = NOW - dt.timedelta(days=400)
    for late, stage in ((dt.timedelta(0), "active"), (dt.timedelta(seconds=1), "lapsing")):
        last = NOW - dt.timedelta(days=90) - late
        stats = CustomerStats(2, first, last, Decimal(10))
        assert lifecycle_stage(stats, NOW, thresholds) == stage
        assert stats.recency_days(NOW) == 90
        seen = CONDITION.validate_python({"seen_within_days": 90})
        assert seen.matches(Audience(now=NOW, last_seen=last)) is (stage == "active")
        recent = CONDITION.validate_python({"event": "cs_contact", "within_days": 90})
        assert recent.matches(Audience(now=NOW, events={"cs_contact": last})) is (stage == "active")
        updated = CONDITION.validate_python({"attr": "city", "updated_within_days": 90})
        written = Audience(now=NOW, profile={"city": "Utrecht"}, attributes_updated={"city": last})
        assert updated.matches(written) is (stage == "active")
