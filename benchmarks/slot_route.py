"""Section 1b: the newsletter slot route in-process, next to a block's cold open.

A slot's first open for a send ranks the feed's items for the recipient (once per send, shared
by every slot), stores the ranking and draws the slot's card; a block's cold open decides and
renders a personal banner. Both run for new recipients, one request each, in interleaved rounds
through the app's WSGI callable, in the same process, so their medians compare directly. The
re-open (the stored ranking read back, the card from the render cache) is measured over HTTP
against the bare app in section 6.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from benchmarks.audience import first_names, store_recipients
from benchmarks.harness import (
    Target,
    Timing,
    heading,
    ms,
    paragraph,
    quotient,
    ratio,
    run_series,
    services_of,
    table,
)
from benchmarks.open_route import WsgiReplay, prebuilt_environ
from benchmarks.targets import SLOT_FIRST_OPEN_VS_BLOCK_COLD, at_most
from models.storage import keys
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.open.slots import send_key
from server.services import Services
from server.urls import SEND_PARAM, TOKEN_PARAM, image_path, slot_image_path

SLOT = 1


@dataclass(frozen=True)
class SlotRouteOptions:
    """How much section 1b measures."""

    rounds: int = 5
    per_round: int = 60
    warmup: int = 20


def demo_send_id(services: Services) -> str:
    """Today's send of the demo newsletter (``load_demo`` exports it)."""
    sends = services.sends.recent(CAMPAIGN_ID, limit=1)
    if not sends:
        raise RuntimeError("the demo newsletter has no send")
    return sends[0].id


def run(app: Flask, options: SlotRouteOptions) -> list[Target]:
    """Measure slot first opens and block cold opens, interleaved; print them."""
    print(heading("1b. Newsletter slot route in-process: first open against a block's cold open"))
    services = services_of(app)
    send_id = demo_send_id(services)
    each = options.warmup + options.rounds * options.per_round
    ids = store_recipients(services, "bench-slot", first_names(2 * each, skip=5_000))
    block_ids, slot_ids = ids[:each], ids[each:]
    block_path = image_path(CAMPAIGN_ID, BLOCK_ID)
    slot_path = slot_image_path(CAMPAIGN_ID, SLOT)

    def block(rids: list[str]) -> WsgiReplay:
        query = [{TOKEN_PARAM: services.signer.sign(rid)} for rid in rids]
        return WsgiReplay(app, [prebuilt_environ(block_path, q) for q in query])

    def slot(rids: list[str]) -> WsgiReplay:
        query = [{TOKEN_PARAM: services.signer.sign(rid), SEND_PARAM: send_id} for rid in rids]
        return WsgiReplay(app, [prebuilt_environ(slot_path, q) for q in query])

    warm = options.warmup
    for replay in (block(block_ids[:warm]), slot(slot_ids[:warm])):
        run_series(replay, count=warm, max_seconds=30)
    parts: dict[str, list[Timing]] = {"block": [], "slot": []}
    replays: list[WsgiReplay] = []
    for round_ in range(options.rounds):
        start = warm + round_ * options.per_round
        chosen = slice(start, start + options.per_round)
        for name, replay in (("block", block(block_ids[chosen])), ("slot", slot(slot_ids[chosen]))):
            parts[name].append(run_series(replay, count=options.per_round, max_seconds=30))
            replays.append(replay)
    cold, first = Timing.merged(parts["block"]), Timing.merged(parts["slot"])
    field = f"{CAMPAIGN_ID}/{send_key(send_id, services.clock())}"
    rankings = sum(1 for rid in slot_ids if services.redis.hexists(keys.rankings(rid), field))

    print(
        paragraph(
            f"{options.rounds} interleaved rounds of {options.per_round} new recipients per route, "
            f"one request each, after {warm} each to warm up: a block's cold open (decide, render "
            "the personal 600×200 banner) and slot "
            f"{SLOT}'s first open of today's send (rank the feed for the recipient, store the "
            "ranking, draw the card)."
        )
    )
    print(
        table(
            ["route", "requests", "median ms", "p99 ms", "CPU µs/req", "vs block cold"],
            [
                [
                    "block, cold open",
                    f"{cold.count:,}",
                    ms(cold.median),
                    ms(cold.p99),
                    cold.per_request(cold.cpu),
                    "1.00×",
                ],
                [
                    "slot, first open",
                    f"{first.count:,}",
                    ms(first.median),
                    ms(first.p99),
                    first.per_request(first.cpu),
                    ratio(quotient(first.median, cold.median)),
                ],
            ],
        )
    )
    problems = sum((replay.problems for replay in replays), start=type(replays[0].problems)())
    verdict = f"PROBLEMS: {dict(problems)}" if problems else "all 200 image/png, no fallback"
    print(paragraph(f"checks: {verdict}; rankings stored for {rankings:,} slot recipients."))
    target = Target(
        "in-process slot first open vs block cold open, median",
        ratio(quotient(first.median, cold.median)),
        at_most(SLOT_FIRST_OPEN_VS_BLOCK_COLD),
        first.median <= SLOT_FIRST_OPEN_VS_BLOCK_COLD * cold.median,
    )
    print(target.line())
    return [target]
