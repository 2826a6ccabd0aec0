"""The decision engine: priorities, first match wins, deterministic weighted splits."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from models.campaigns.conditions import Audience
from models.campaigns.experiments import ArmOutcome, split_point
from models.campaigns.specs import Block, Campaign
from models.decision import Decision, DecisionEngine, Snapshot, choose_variant
from models.email_clients import ClientInfo
from models.recipients.recipient_reads import RecipientData
from tests.factories import block, variant

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def make_block(variants: list[dict[str, object]]) -> Block:
    return Block.model_validate(
        {**block(variants=variants), "campaign_id": "daily", "version": 1, "updated_at": NOW}
    )


def audience(**scores: float) -> Audience:
    return Audience(now=NOW, scores=scores)


def test_highest_priority_match_wins() -> None:
    b = make_block(
        [
            variant("low", priority=1),
            variant("high", {"score": "p", "gte": 0.5}, priority=9),
            variant("mid", {"score": "p", "gte": 0.2}, priority=5),
        ]
    )
    assert choose_variant(b, audience(p=0.9), "r1")[0].id == "high"  # type: ignore[union-attr]
    assert choose_variant(b, audience(p=0.3), "r1")[0].id == "mid"  # type: ignore[union-attr]
    assert choose_variant(b, audience(p=0.0), "r1")[0].id == "low"  # type: ignore[union-attr]


def test_no_match_is_the_fallback() -> None:
    b = make_block([variant("only", {"score": "p", "gte": 0.5})])
    chosen, reason = choose_variant(b, audience(p=0.1), "r1")
    assert chosen is None
    assert reason == "no variant matched"


def test_equal_priority_split_is_deterministic_and_weighted() -> None:
    b = make_block([variant("a", weight=3), variant("b", weight=1)])
    picks = Counter(
        choose_variant(b, audience(), f"r{i}")[0].id  # type: ignore[union-attr]
        for i in range(4000)
    )
    assert 2800 < picks["a"] < 3200  # 75% ± noise
    for i in range(50):
        first = choose_variant(b, audience(), f"r{i}")[0]
        assert all(choose_variant(b, audience(), f"r{i}")[0] == first for _ in range(3))


def test_zero_weight_arm_gets_nobody() -> None:
    b = make_block([variant("a", weight=1), variant("off", weight=0)])
    assert {
        choose_variant(b, audience(), f"r{i}")[0].id  # type: ignore[union-attr]
        for i in range(500)
    } == {"a"}


def test_split_point_is_uniform_per_block() -> None:
    points = [split_point(f"r{i}", "daily", "hero") for i in range(2000)]
    assert all(0 <= p < 1 for p in points)
    assert 0.45 < sum(points) / len(points) < 0.55
    assert split_point("r1", "daily", "hero") != split_point("r1", "daily", "other")


def arms_of(b: Block, recipients: int = 3000) -> dict[str, str]:
    return {
        f"r{i}": choose_variant(b, audience(), f"r{i}")[0].id  # type: ignore[union-attr]
        for i in range(recipients)
    }


def test_reordering_the_variants_moves_nobody() -> None:
    listed = arms_of(make_block([variant("a"), variant("b"), variant("c")]))
    relisted = arms_of(make_block([variant("c"), variant("a"), variant("b")]))
    assert listed == relisted
    assert 900 < Counter(listed.values())["a"] < 1100


def test_a_weight_change_moves_only_the_share_it_must() -> None:
    before = arms_of(make_block([variant("a"), variant("b"), variant("c")]))
    after = arms_of(make_block([variant("a", weight=2), variant("b"), variant("c")]))
    moved = {rid: (before[rid], after[rid]) for rid in before if before[rid] != after[rid]}
    assert {new for _, new in moved.values()} == {"a"}  # only into the heavier arm
    # a's share goes from 1/3 to 1/2: one sixth of everyone moves, and nobody else
    assert 3000 / 6 * 0.85 < len(moved) < 3000 / 6 * 1.15
    assert 1350 < Counter(after.values())["a"] < 1650
    lighter = arms_of(make_block([variant("a"), variant("b"), variant("c", weight=0.5)]))
    assert {old for rid, old in before.items() if lighter[rid] != old} == {"c"}  # only out of c


def test_a_bandits_arm_holds_for_one_send_and_is_drawn_again_for_the_next() -> None:
    bandit = Block.model_validate(
        {
            **block(
                variants=[variant("a"), variant("b")],
                experiment={"mode": "bandit", "min_exploration": 0},
            ),
            "campaign_id": "daily",
            "version": 1,
            "updated_at": NOW,
        }
    )
    campaign = Campaign(id="daily", created_at=NOW, updated_at=NOW)
    engine = DecisionEngine(
        totals=lambda _c, _b: {"a": ArmOutcome(10_000, 10), "b": ArmOutcome(10_000, 3_000)}
    )
    person = ClientInfo("apple_mail_ios", "mobile", "human")
    previous = Decision("daily", "hero", "a", 1, NOW, "bandit among 2", send="2026-11-22")
    data = RecipientData(profile={"first_name": "Anna"})
    snapshot = Snapshot(campaign, bandit, data, previous)
    same_send, _ = engine.decide(snapshot, "anna", NOW, person, send="2026-11-22")
    assert (same_send.variant_id, same_send.reason) == ("a", "kept its arm among 2")
    next_send, _ = engine.decide(snapshot, "anna", NOW, person, send="2026-11-23")
    assert (next_send.variant_id, next_send.send) == ("b", "2026-11-23")
    prefetch, _ = engine.decide(
        snapshot, "anna", NOW, ClientInfo("apple_mpp", "unknown", "machine")
    )
    assert prefetch.human is False
