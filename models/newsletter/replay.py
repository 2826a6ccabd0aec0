"""Offline replay: how a ranking would have done on a newsletter's logged emails.

The log is what each email showed in each slot, what its recipient clicked and bought, and
what the ranking knew of them (scores, persona). A policy (a set of ranking rules) is replayed on
the held-out days: for each logged email it ranks the feed as Blanco would have, with the
recipient's history up to that day *as logged* (what they were shown, clicked and bought) and
the popularity learned from the days before the held-out ones only; where its item for a slot
is the item the log shows there, the logged outcome counts for it. When the logged items were
drawn at random (a uniform exploration policy), the matched emails are a fair sample of what the
policy would have shown, and its click rate, conversion rate and revenue per impression on them
estimate what it would have earned (the replay method of Li, Chu, Langford and Wang, 2011).
Only explored emails are replayed (``LoggedEmail.explored``: Blanco's own rankings are explored
for ``exploration_share`` of emails); every email counts in the history.

``benchmarks/synthetic_newsletter.py`` makes a seeded log that the tests and the benchmark share.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.newsletter.content_feed import ContentItem
from models.newsletter.newsletters import Ranking
from models.newsletter.popularity import NO_POPULARITY, ItemFigures, Popularity
from models.newsletter.recipient_history import PastSend, RecipientHistory
from models.newsletter.slot_ranking import rank_items
from models.recipients.recipient_reads import RecipientData
from models.recipients.segmentation import PERSONA_ATTRIBUTE

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class LoggedEmail:
    """One email of the log: who, when, what each slot showed, and what came of it."""

    recipient_id: str
    day: dt.date
    opened_at: dt.datetime
    """When it was opened (and ranked)."""
    shown: tuple[str, ...]
    """The item of each slot, in slot order."""
    clicked: frozenset[str] = frozenset()
    bought: Mapping[str, float] = field(default_factory=dict)
    """Item -> revenue of the orders its click led to."""
    scores: Mapping[str, float] = field(default_factory=dict)
    persona: str | None = None
    explored: bool = True
    """Its items were drawn at random among the eligible ones: only such emails are replayed
    (the others show what a ranking chose, a biased sample)."""


@dataclass(frozen=True)
class PolicyFigures:
    """A policy's outcome on the emails where it matched the log."""

    matched: int = 0
    """Slot impressions where the policy's item is the logged one."""
    clicks: int = 0
    orders: int = 0
    revenue: float = 0.0

    def rate(self, successes: int) -> tuple[float, float, float] | None:
        """A rate per matched impression, with its 95% interval (normal approximation)."""
        if not self.matched:
            return None
        p = successes / self.matched
        error = Z_95 * math.sqrt(p * (1 - p) / self.matched)
        return p, max(0.0, p - error), min(1.0, p + error)

    def as_dict(self) -> dict[str, object]:
        """As the benchmark prints it."""
        return {
            "matched": self.matched,
            "clicks": self.clicks,
            "orders": self.orders,
            "revenue": round(self.revenue, 2),
            "click_rate": self.rate(self.clicks),
            "conversion_rate": self.rate(self.orders),
            "revenue_per_impression": self.revenue / self.matched if self.matched else None,
        }


@dataclass
class _Seen:
    """A recipient's logged history so far."""

    sends: list[PastSend] = field(default_factory=list)
    clicked: dict[str, float] = field(default_factory=dict)
    bought: set[str] = field(default_factory=set)

    def history(self) -> RecipientHistory:
        return RecipientHistory(
            tuple(reversed(self.sends[-32:])), dict(self.clicked), frozenset(self.bought)
        )

    def add(self, email: LoggedEmail, campaign: str) -> None:
        self.sends.append(PastSend(f"{campaign}/{email.day}", email.opened_at, email.shown))
        clicked_at = (email.opened_at + dt.timedelta(minutes=5)).timestamp()
        for item in email.clicked:
            self.clicked[item] = clicked_at
        self.bought |= set(email.bought)


def learned_popularity(emails: Iterable[LoggedEmail]) -> dict[str | None, Popularity]:
    """Per persona (None: everyone), each item's distinct recipients shown, clickers and
    converters, as Blanco counts them: what the replay's policies learn from."""
    shown: dict[str | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    clicked: dict[str | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    bought: dict[str | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for email in emails:
        for group in {email.persona, None}:
            for item in email.shown:
                shown[group][item].add(email.recipient_id)
            for item in email.clicked:
                clicked[group][item].add(email.recipient_id)
            for item in email.bought:
                bought[group][item].add(email.recipient_id)
    return {
        group: Popularity(
            {
                item: ItemFigures(len(people), len(clicked[group][item]), len(bought[group][item]))
                for item, people in items.items()
            }
        )
        for group, items in shown.items()
    }


def replay(
    log: Sequence[LoggedEmail],
    items: Sequence[ContentItem],
    policies: Mapping[str, Ranking],
    held_out_from: dt.date,
    campaign: str = "daily",
) -> dict[str, PolicyFigures]:
    """Each policy's figures on the held-out days of ``log`` (see the module docstring)."""
    ordered = sorted(log, key=lambda e: (e.opened_at, e.recipient_id))
    popularity = learned_popularity(e for e in ordered if e.day < held_out_from)
    seen: dict[str, _Seen] = defaultdict(_Seen)
    totals = {name: [0, 0, 0, 0.0] for name in policies}
    for email in ordered:
        past = seen[email.recipient_id]
        if email.day >= held_out_from and email.explored:
            history = past.history()
            data = RecipientData(
                profile={PERSONA_ATTRIBUTE: email.persona} if email.persona else {},
                scores=email.scores,
            )
            prior = popularity.get(email.persona, popularity.get(None, NO_POPULARITY))
            for name, rules in policies.items():
                ranking = rank_items(
                    items,
                    rules,
                    data,
                    email.recipient_id,
                    email.opened_at,
                    len(email.shown),
                    0,
                    history,
                    prior if rules.popularity_weight else NO_POPULARITY,
                )
                figures = totals[name]
                for ranked, logged in zip(ranking.items, email.shown, strict=False):
                    if ranked.id != logged:
                        continue
                    figures[0] += 1
                    figures[1] += logged in email.clicked
                    figures[2] += logged in email.bought
                    figures[3] += email.bought.get(logged, 0.0)
        past.add(email, campaign)
    return {
        name: PolicyFigures(int(m), int(c), int(o), float(r))
        for name, (m, c, o, r) in totals.items()
    }
