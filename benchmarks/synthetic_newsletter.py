"""A seeded world of recipients reading the daily newsletter for weeks, shared by the tests and
the benchmark of the offline replay (``models/newsletter/replay.py``).

What is true in this world, stated here independently of Blanco's ranking:

* ``CATEGORIES`` × ``ITEMS_PER_CATEGORY`` items, each with an appeal (how clickable it is) and
  a price;
* ``PERSONAS``, each with its own liking of each category; a recipient's liking is their
  persona's, varied a little by person. Their affinity scores (what Blanco sees) are that
  liking plus noise, and missing for a third of the categories;
* each day a recipient opens the email with ``OPEN_RATE``; the logged email shows
  ``SLOTS`` distinct items drawn **uniformly at random** (an exploration policy, so that the
  replay is fair);
* a shown item is clicked with probability ``BASE_CLICK`` × liking × appeal, times
  ``IGNORED_FACTOR`` for each of the recipient's last ``FATIGUE_DAYS`` emails that showed it
  without a click (people skip what they have ignored before), and times ``BOUGHT_FACTOR``
  when they bought it already; a click leads to an order with probability ``BUY_RATE`` ×
  appeal, never for an item already bought.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from models.newsletter.content_feed import ContentItem
from models.newsletter.replay import LoggedEmail

CATEGORIES = ("city", "beach", "ski", "culture", "food", "nature")
ITEMS_PER_CATEGORY = 4
PERSONAS = ("sun", "town", "active")
SLOTS = 3
OPEN_RATE = 0.6
BASE_CLICK = 0.10
BUY_RATE = 0.25
IGNORED_FACTOR = 0.4
FATIGUE_DAYS = 5
BOUGHT_FACTOR = 0.2
FIRST_DAY = dt.date(2026, 11, 2)


@dataclass(frozen=True)
class World:
    """The feed and the log of a seeded world."""

    items: tuple[ContentItem, ...]
    log: tuple[LoggedEmail, ...]
    held_out_from: dt.date


def world(recipients: int, days: int, held_out_days: int, seed: int) -> World:
    """A world of ``recipients`` reading ``days`` daily emails; the last ``held_out_days`` are
    held out for the replay."""
    rng = random.Random(seed)
    appeal, price, items = {}, {}, []
    for category in CATEGORIES:
        for n in range(ITEMS_PER_CATEGORY):
            item_id = f"{category}-{n}"
            appeal[item_id] = rng.uniform(0.4, 1.6)
            price[item_id] = round(rng.uniform(50, 800), 2)
            items.append(
                ContentItem.model_validate(
                    {
                        "id": item_id,
                        "title": item_id,
                        "url": f"https://shop.example/{item_id}",
                        "category": category,
                    }
                )
            )
    persona_liking = {
        persona: {c: rng.uniform(0.05, 1.0) ** 2 for c in CATEGORIES} for persona in PERSONAS
    }
    people = []
    for n in range(recipients):
        persona = PERSONAS[n % len(PERSONAS)]
        liking = {c: persona_liking[persona][c] * rng.uniform(0.7, 1.3) for c in CATEGORIES}
        scores = {
            f"affinity:{c}": round(min(1.0, max(0.0, liking[c] + rng.gauss(0, 0.35))), 3)
            for c in CATEGORIES
            if rng.random() < 2 / 3
        }
        people.append((f"r{n}", persona, liking, scores))
    ignored: dict[tuple[str, str], list[int]] = {}
    bought: set[tuple[str, str]] = set()
    log = []
    for day_number in range(days):
        day = FIRST_DAY + dt.timedelta(days=day_number)
        opened_at = dt.datetime.combine(day, dt.time(10, 30), dt.UTC)
        for rid, persona, liking, scores in people:
            if rng.random() >= OPEN_RATE:
                continue
            shown = tuple(rng.sample([i.id for i in items], SLOTS))
            clicked, orders = set(), {}
            for item_id in shown:
                category = item_id.rpartition("-")[0]
                recent = [
                    d for d in ignored.get((rid, item_id), []) if d >= day_number - FATIGUE_DAYS
                ]
                chance = BASE_CLICK * liking[category] * appeal[item_id]
                chance *= IGNORED_FACTOR ** len(recent)
                if (rid, item_id) in bought:
                    chance *= BOUGHT_FACTOR
                if rng.random() < min(chance, 0.9):
                    clicked.add(item_id)
                    ignored.pop((rid, item_id), None)
                    if (rid, item_id) not in bought and rng.random() < BUY_RATE * appeal[item_id]:
                        orders[item_id] = price[item_id]
                        bought.add((rid, item_id))
                else:
                    ignored.setdefault((rid, item_id), []).append(day_number)
            log.append(
                LoggedEmail(rid, day, opened_at, shown, frozenset(clicked), orders, scores, persona)
            )
    return World(tuple(items), tuple(log), FIRST_DAY + dt.timedelta(days=days - held_out_days))
