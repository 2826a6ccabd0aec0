"""Exact money per arm: orders, converters and revenue credited to each block and arm.

Per scope (the experiment to date, or one newsletter send), campaign and measurement shard, a
Lua script counts one credited order: the first time an order is counted it adds one order, its
value and, if the recipient had none yet in that arm, one converter; counting the same order
again adds nothing, and a new value for it adds only the difference. The revenue of each
converter is kept too, so that the spread of revenue per recipient (for confidence intervals)
is exact. Values are integers in minor units (1/100) of the reporting currency. The three hashes
of a shard share its hash slot, so the script stays on one node of a Redis Cluster.

Figures are counted under a *basis*: ``click``, ``view``, ``late_click``, ``late_view``
(``models.conversions.attribution``) and ``exposed``: every order of a send's members and of its
holdout within the click window after the send, credited or not (incremental revenue).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from models.measurement.arm_counts import Scope, sum_shard_fields
from models.storage import keys
from models.storage.batch import Batch, Command, NodeGuard
from models.storage.clients import cluster_of

MINOR_UNITS = 100
FIGURES = ("orders", "converters", "revenue", "revenue_sq")

_COUNT = """
local cents = tonumber(ARGV[4])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and tonumber(old) == cents then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], cents)
local delta = cents - tonumber(old or '0')
if not old then redis.call('HINCRBY', KEYS[1], ARGV[2] .. 'orders', 1) end
local before = redis.call('HGET', KEYS[3], ARGV[3])
local was = tonumber(before or '0')
local now = was + delta
redis.call('HSET', KEYS[3], ARGV[3], now)
if not before then redis.call('HINCRBY', KEYS[1], ARGV[2] .. 'converters', 1) end
redis.call('HINCRBY', KEYS[1], ARGV[2] .. 'revenue', delta)
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[2] .. 'revenue_sq', now * now - was * was)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 1
"""
"""Count order ARGV[1] (``basis|block|arm|<pseudonym>|<order key>``) of ARGV[4] minor units
under the field prefix ARGV[2] (``basis|block|arm|``) of counts KEYS[1]; KEYS[2] holds each
order's counted value, KEYS[3] each converter's (field ARGV[3]); every key expires after ARGV[5]
seconds. An order is counted once per basis, block and arm: the same order can count both where
a click credits it and under its send's ``exposed`` members."""
COUNT_SHA = hashlib.sha1(_COUNT.encode()).hexdigest()  # noqa: S324  (Redis names scripts so)


def to_minor(amount: Decimal) -> int:
    """An amount of the reporting currency in minor units (rounded half to even)."""
    return int((amount * MINOR_UNITS).quantize(Decimal(1)))


def count_commands(
    campaign_id: str,
    scopes: Iterable[Scope],
    basis: str,
    block_id: str,
    arm: str,
    pseudonym: str,
    order_key: str,
    shard: keys.Shard,
    minor: int,
) -> list[Command]:
    """The commands that count one order of ``minor`` units in each scope. ``order_key`` names
    the order without its id (a keyed hash: an id may hold personal data, and the counters
    outlive an erasure)."""
    prefix = f"{basis}|{block_id}|{arm}|"
    return [
        (
            "EVALSHA",
            COUNT_SHA,
            3,
            keys.money_counts(campaign_id, scope.name, shard),
            keys.money_orders(campaign_id, scope.name, shard),
            keys.money_by_recipient(campaign_id, scope.name, shard),
            f"{prefix}{pseudonym}|{order_key}",
            prefix,
            prefix + pseudonym,
            minor,
            scope.counts_ttl,
        )
        for scope in scopes
    ]


@dataclass(frozen=True)
class Money:
    """The money of one arm under one basis, in one scope."""

    orders: int = 0
    converters: int = 0
    revenue_minor: int = 0
    revenue_sq_minor: float = 0.0
    """The sum over converters of their revenue squared (minor units squared)."""

    @property
    def revenue(self) -> Decimal:
        """Revenue in the reporting currency."""
        return Decimal(self.revenue_minor) / MINOR_UNITS

    def mean_and_variance(self, recipients: int) -> tuple[float, float] | None:
        """Revenue per recipient and its sample variance over ``recipients`` (those who bought
        nothing count as 0), in the reporting currency; None below two recipients."""
        if recipients < 2:
            return None
        total = self.revenue_minor / MINOR_UNITS
        squares = self.revenue_sq_minor / MINOR_UNITS**2
        mean = total / recipients
        variance = max(0.0, (squares - recipients * mean * mean) / (recipients - 1))
        return mean, variance


BlockMoney = dict[tuple[str, str], Money]
"""(basis, arm) -> money, for one block."""


def read_money(
    client: Any, campaign_id: str, scope: str, *, guard: NodeGuard | None = None
) -> dict[str, BlockMoney]:
    """Every block's money in ``scope``, summed over the shards. With a ``guard`` (the open
    path), a shard whose node fails or is skipped is left out."""
    summed = sum_shard_fields(
        lambda shard: keys.money_counts(campaign_id, scope, shard), client, guard
    )
    found: dict[str, BlockMoney] = defaultdict(dict)
    for (basis, block, arm), figures in summed.items():
        found[block][(basis, arm)] = Money(
            orders=int(figures.get("orders", 0)),
            converters=int(figures.get("converters", 0)),
            revenue_minor=int(figures.get("revenue", 0)),
            revenue_sq_minor=figures.get("revenue_sq", 0.0),
        )
    return dict(found)


def load_script(client: Any) -> None:
    """Load the counting script into the Redis behind ``client`` (every primary of a
    cluster)."""
    cluster = cluster_of(client)
    if cluster is None:
        client.script_load(_COUNT)
        return
    for node in cluster.get_primaries():
        cluster.get_redis_connection(node).script_load(_COUNT)


def read_converter_revenue(
    client: Any, campaign_id: str, scope: str, basis: str, block_id: str
) -> dict[str, list[float]]:
    """Per arm of ``block_id``, the revenue of each converter under ``basis`` in ``scope`` (in
    the reporting currency): what a revenue comparison resamples."""
    batch = Batch(client)
    for shard in keys.SHARDS_READ:
        batch.hgetall(keys.money_by_recipient(campaign_id, scope, shard))
    prefix = f"{basis}|{block_id}|"
    found: dict[str, list[float]] = defaultdict(list)
    for reply in batch.execute():
        for name, value in reply.items():
            field = name.decode() if isinstance(name, bytes) else name
            if field.startswith(prefix):
                arm = field[len(prefix) :].partition("|")[0]
                found[arm].append(int(float(value)) / MINOR_UNITS)
    return dict(found)
