"""The decision engine: which content of a block this recipient sees at this moment.

Variants are evaluated in priority order (highest first); the first priority level with a
match wins. Several matches at that level split by weight, deterministically per recipient and
block (a hash), so an A/B test shows one person one arm. No match: the block's fallback.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from models.campaigns.conditions import Audience
from models.campaigns.experiments import Totals, split_point, thompson_choice
from models.campaigns.live_data import NO_LIVE_VALUES, LiveFields, LiveValues
from models.campaigns.specs import Block, Campaign, Variant
from models.email_clients import ClientInfo
from models.recipients.recipient_reads import RecipientData
from models.storage import keys
from models.storage.batch import Command

FALLBACK = None


@dataclass(frozen=True)
class Decision:
    """What a recipient was shown for a block (``variant_id`` None means the fallback)."""

    campaign_id: str
    block_id: str
    variant_id: str | None
    version: int
    decided_at: dt.datetime
    reason: str
    client: str = "unknown"
    first_open_at: dt.datetime | None = None
    holdout: bool = False
    human: bool = True
    """Made for a person's open (or a click), not a machine's prefetch: a machine's decision
    never replaces it (decisions stored before this was kept count as a person's)."""
    send: str | None = None
    """The newsletter send of the open that made it (a bandit's arm holds for one send)."""

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(
            {
                "v": self.variant_id,
                "ver": self.version,
                "at": self.decided_at.isoformat(),
                "why": self.reason,
                "client": self.client,
                "first": (self.first_open_at or self.decided_at).isoformat(),
                "holdout": self.holdout,
                "human": self.human,
                "send": self.send,
            }
        )

    @classmethod
    def from_json(cls, campaign_id: str, block_id: str, document: str) -> Decision:
        """Read a stored decision (cached: a re-open reads the same document again)."""
        return _stored_decision(campaign_id, block_id, document)

    @classmethod
    def _parse(cls, campaign_id: str, block_id: str, document: str) -> Decision:
        data = json.loads(document)
        return cls(
            campaign_id=campaign_id,
            block_id=block_id,
            variant_id=data["v"],
            version=int(data["ver"]),
            decided_at=dt.datetime.fromisoformat(data["at"]),
            reason=data.get("why", ""),
            client=data.get("client", "unknown"),
            first_open_at=dt.datetime.fromisoformat(data["first"]) if "first" in data else None,
            holdout=bool(data.get("holdout", False)),
            human=bool(data.get("human", True)),
            send=data.get("send"),
        )


@lru_cache(maxsize=16384)
def _stored_decision(campaign_id: str, block_id: str, document: str) -> Decision:
    return Decision._parse(campaign_id, block_id, document)


def decision_field(campaign_id: str, block_id: str) -> str:
    """The field of a recipient's decisions hash that holds one block's decision."""
    return f"{campaign_id}/{block_id}"


@dataclass(frozen=True)
class Snapshot:
    """Everything a decision needs: the configuration (from the worker's cache) and what the
    open read of its recipient."""

    campaign: Campaign | None
    block: Block | None
    recipient: RecipientData
    previous: Decision | None
    erased: bool = False
    """The recipient was erased: no data, and callers treat the token as unverified."""
    live: LiveValues = NO_LIVE_VALUES
    """Every live source as pushed; ``fresh_live`` says which may be used at a moment."""

    def fresh_live(self, now: dt.datetime) -> LiveFields:
        """The values of the live sources that are fresh at ``now``, by source."""
        return self.live.fresh(now)

    def render_fields(self, now: dt.datetime, with_profile: bool = True) -> dict[str, Any]:
        """What a variant's templates read: the profile (unless restricted), plus ``live``
        (the fresh sources; it hides a profile attribute of that name)."""
        profile = self.recipient.profile if with_profile else {}
        return {**profile, "live": self.fresh_live(now)}


NO_TOTALS: Callable[[str, str], Totals] = lambda _c, _b: {}  # noqa: E731


def _live_ready(block: Block, variant_id: str | None, live: LiveFields) -> bool:
    """Whether the live sources the block's variant requires are fresh (a lock on the first
    open's variant holds only while they are; the fallback requires none)."""
    variant = block.variant(variant_id) if variant_id else None
    return variant is None or all(source in live for source in variant.requires_live)


def _eligible(variant: Variant, audience: Audience) -> bool:
    """Whether the variant's live sources are all fresh and its condition matches."""
    if any(source not in audience.live for source in variant.requires_live):
        return False
    return variant.when is None or variant.when.matches(audience)


def choose_variant(
    block: Block,
    audience: Audience,
    recipient_id: str,
    totals: Callable[[str, str], Totals] = NO_TOTALS,
    kept: str | None = None,
) -> tuple[Variant | None, str]:
    """The variant to show and why; None means the fallback.

    ``totals`` gives the bandit each variant's outcome to date (recipients, clickers,
    converters, revenue). ``kept`` is the arm the
    recipient already has: while it is one of the arms an experiment splits between, it stays
    (re-opens and the bandit's learning never move a recipient).
    """
    by_priority = sorted(block.variants, key=lambda v: -v.priority)
    level: list[Variant] = []
    for variant in by_priority:
        if level and variant.priority != level[0].priority:
            break
        if _eligible(variant, audience):
            level.append(variant)
    if not level:
        return FALLBACK, "no variant matched"
    if len(level) == 1:
        return level[0], "matched"
    arm = next((v for v in level if v.id == kept and v.weight > 0), None)
    if arm is not None:
        return arm, f"kept its arm among {len(level)}"
    experiment = block.experiment
    if experiment is not None and experiment.mode == "bandit":
        seed = split_point(recipient_id, block.campaign_id, block.id, "bandit")
        rng = random.Random(f"{seed}:{audience.now.isoformat()}")
        arms = sorted(v.id for v in level if v.weight > 0) or [level[0].id]  # not list order
        chosen = thompson_choice(
            arms,
            totals(block.campaign_id, block.id),
            rng,
            experiment.min_exploration,
            experiment.metric,
        )
        return next(v for v in level if v.id == chosen), f"bandit among {len(arms)}"
    weighted = [v for v in level if v.weight > 0]
    if not weighted:
        return level[0], "matched"
    return split_arm(recipient_id, block, weighted), f"split among {len(level)}"


def split_arm(recipient_id: str, block: Block, arms: Sequence[Variant]) -> Variant:
    """The recipient's arm of a weighted split (weighted rendezvous hashing): each arm scores
    −ln(u) / weight, with u a stable number per recipient, block and arm *id*, and the lowest
    score wins. So the arm depends on the ids and weights only, never on the list's order;
    each arm gets its weight's share; and a weight change moves recipients only to or from the
    arm whose weight changed (the other arms' scores stay as they were)."""

    def score(variant: Variant) -> float:
        point = split_point(recipient_id, block.campaign_id, block.id, f"arm:{variant.id}")
        return -math.log1p(-point) / variant.weight

    return min(arms, key=lambda variant: (score(variant), variant.id))


BlockVersions = Callable[[Block, int], Block | None]
"""Finds a past version of a block (the configuration cache)."""


def _current_only(current: Block, version: int) -> Block | None:
    return current if version == current.version else None


class DecisionEngine:
    """Decides which content of a block a recipient sees now (no I/O of its own: the open
    path loads the snapshot, and stores and records the decision)."""

    def __init__(
        self,
        totals: Callable[[str, str], Totals] = NO_TOTALS,
        block_version: BlockVersions = _current_only,
    ) -> None:
        self.totals = totals
        self.block_version = block_version

    def decide(
        self,
        snapshot: Snapshot,
        recipient_id: str | None,
        now: dt.datetime,
        client: ClientInfo,
        send: str | None = None,
    ) -> tuple[Decision, Block]:
        """The decision for this open (of the newsletter ``send``, if any) and the block version
        it refers to."""
        block = snapshot.block
        if block is None or snapshot.campaign is None:
            raise LookupError("unknown campaign or block")

        previous = snapshot.previous
        first_open = previous.first_open_at if previous and previous.first_open_at else now

        def fallback(reason: str, holdout: bool = False) -> tuple[Decision, Block]:
            decision = Decision(
                block.campaign_id,
                block.id,
                FALLBACK,
                block.version,
                now,
                reason,
                client.client,
                first_open,
                holdout,
                human=not client.machine,
                send=send,
            )
            return decision, block

        if snapshot.campaign.status != "active":
            return fallback("campaign paused")
        if recipient_id is None:
            return fallback("no verified recipient")
        if snapshot.erased:
            return fallback("erased recipient")
        if not snapshot.recipient.known:
            return fallback("unknown recipient")
        if not snapshot.recipient.consents:
            return fallback("no consent")
        live = snapshot.fresh_live(now)
        if block.lock_on_first_open and previous is not None:
            shown = self.block_version(block, previous.version)
            if shown is not None and _live_ready(shown, previous.variant_id, live):
                return previous, shown
        experiment = block.experiment
        if experiment is not None:
            if split_point(recipient_id, block.campaign_id, block.id, "holdout") < (
                experiment.holdout
            ):
                return fallback("holdout", holdout=True)
            if split_point(recipient_id, block.campaign_id, block.id, "pilot") >= (
                experiment.pilot
            ):
                return fallback("outside the pilot")
        audience = snapshot.recipient.audience(now, client.client, client.device, live)
        kept = previous.variant_id if previous is not None else None
        bandit = experiment is not None and experiment.mode == "bandit"
        if bandit and previous is not None and previous.send != send:
            kept = None  # a bandit's arm holds for one send; the next one draws again
        variant, reason = choose_variant(block, audience, recipient_id, self.totals, kept)
        decision = Decision(
            block.campaign_id,
            block.id,
            variant.id if variant else FALLBACK,
            block.version,
            now,
            reason,
            client.client,
            first_open,
            human=not client.machine,
            send=send,
        )
        return decision, block


def decision_store_commands(recipient_id: str, decision: Decision, ttl: int) -> list[Command]:
    """The commands that store ``decision`` (what the recipient's click will follow), with
    its TTL."""
    key = keys.decisions(recipient_id)
    field = decision_field(decision.campaign_id, decision.block_id)
    return [("HSET", key, field, decision.to_json()), ("EXPIRE", key, ttl)]
