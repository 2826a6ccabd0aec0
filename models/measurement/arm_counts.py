"""Exact distinct recipients per arm: who an arm reached, who opened, who clicked.

The figures an experiment is decided on are counted exactly, per block and arm, over two scopes:
the experiment to date (``EXPERIMENT_SCOPE``, every event the retention keeps) and each
newsletter send (``send_scope``). Per scope, block, arm and measurement shard, a hash holds one
small field per recipient pseudonym: bit flags of what the recipient did in that arm. A Lua script
sets the flags and, the first time a flag is set, adds one to the scope's counts hash, so counts
stay exact under any number of re-opens, retries and workers. The flags and counts of a shard
share its hash slot, which keeps the script on one node of a Redis Cluster.

What each count means (``docs/measurement.md`` defines the metrics built on them):

* ``recipients``: recipients the arm was shown to: any open (a person's, a proxy's or a machine's
  prefetch) or a person's click;
* ``openers``: recipients seen opening: an open by a person, a proxy, or an agent not recognised
  (machine opens are left out);
* ``clickers``: recipients who clicked (a person's click; bot clicks are left out);
* ``clickers_seen_opening``: clickers who are also openers, in either order.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from models.measurement.comparisons import Rate
from models.storage import keys
from models.storage.batch import Batch, Command, NodeGuard
from models.storage.clients import cluster_of

EXPERIMENT_SCOPE = "experiment"
"""The scope of every event the retention keeps (an experiment to date)."""
REACHED, OPENED, CLICKED = 1, 2, 4
"""The flags of a recipient in an arm."""
COUNT_NAMES = ("recipients", "openers", "clickers", "clickers_seen_opening")

_MARK = """
local names = {[1] = 'recipients', [2] = 'openers', [4] = 'clickers'}
local marked = 0
for i = 1, #KEYS, 2 do
  local scope = (i + 1) / 2
  local old = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0')
  local new = bit.bor(old, tonumber(ARGV[2]))
  if new ~= old then
    marked = marked + 1
    redis.call('HSET', KEYS[i], ARGV[1], new)
    redis.call('EXPIRE', KEYS[i], ARGV[2 + 2 * scope])
    for flag, name in pairs(names) do
      if bit.band(new, flag) ~= 0 and bit.band(old, flag) == 0 then
        redis.call('HINCRBY', KEYS[i + 1], ARGV[3] .. name, 1)
      end
    end
    if bit.band(new, 6) == 6 and bit.band(old, 6) ~= 6 then
      redis.call('HINCRBY', KEYS[i + 1], ARGV[3] .. 'clickers_seen_opening', 1)
    end
    redis.call('EXPIRE', KEYS[i + 1], ARGV[3 + 2 * scope])
  end
end
return marked
"""
"""For each scope s (keys 2s-1 and 2s): set flags ARGV[2] of member ARGV[1] in flags hash
KEYS[2s-1]; count each newly set flag in KEYS[2s] under the field prefix ARGV[3]; the flags
expire after ARGV[2+2s] seconds, the counts after ARGV[3+2s]. One call marks every scope of an
event (their keys share the shard's slot). Sent with EVALSHA (its digest, not its text, travels
with every record): a Redis that restarted or failed over has forgotten it and answers NOSCRIPT,
and the writer loads it there (``load_script``) and writes those records again."""
MARK_SHA = hashlib.sha1(_MARK.encode()).hexdigest()  # noqa: S324  (Redis names scripts so)


def send_scope(send_id: str) -> str:
    """The scope of one newsletter send."""
    return f"send:{send_id}"


def persona_scope(persona: str) -> str:
    """The scope of one persona's recipients (newsletter slots only: item popularity)."""
    return f"persona:{persona}"


def flags_of(event: str, kind: str) -> int:
    """The flags an open or click of ``kind`` sets (a bot's click sets none)."""
    if event == "open":
        return REACHED | (OPENED if kind != "machine" else 0)
    return REACHED | CLICKED if kind == "human" else 0


@dataclass(frozen=True)
class Scope:
    """A scope to mark in, and how long its marks and its counts are kept (seconds)."""

    name: str
    marks_ttl: int
    counts_ttl: int


def mark_commands(
    campaign_id: str,
    scopes: Iterable[Scope],
    block_id: str,
    arm: str,
    pseudonym: str,
    shard: keys.Shard,
    flags: int,
) -> list[Command]:
    """The command that marks ``pseudonym`` with ``flags`` in ``arm`` of every scope (one
    script call; none when the event sets no flag)."""
    listed = list(scopes)
    if not flags or not listed:
        return []
    names = [
        key
        for scope in listed
        for key in (
            keys.arm_flags(campaign_id, scope.name, block_id, arm, shard),
            keys.arm_counts(campaign_id, scope.name, shard),
        )
    ]
    lifetimes = [ttl for scope in listed for ttl in (scope.marks_ttl, scope.counts_ttl)]
    return [
        (
            "EVALSHA",
            MARK_SHA,
            len(names),
            *names,
            pseudonym,
            flags,
            f"{block_id}|{arm}|",
            *lifetimes,
        )
    ]


@dataclass(frozen=True)
class ArmCounts:
    """Exact distinct recipients of one arm in one scope."""

    recipients: int = 0
    openers: int = 0
    clickers: int = 0
    clickers_seen_opening: int = 0

    @property
    def click_rate(self) -> Rate:
        """The primary metric: clickers per recipient the arm was shown to."""
        return Rate(successes=self.clickers, trials=self.recipients)

    @property
    def click_to_open(self) -> Rate:
        """Clickers seen opening per opener (a clicker never seen opening is not counted)."""
        return Rate(successes=self.clickers_seen_opening, trials=self.openers)

    def as_dict(self) -> dict[str, Any]:
        """The counts and both rates, as reports show them."""
        return {
            "recipients": self.recipients,
            "openers": self.openers,
            "clickers": self.clickers,
            "clickers_seen_opening": self.clickers_seen_opening,
            "click_rate": self.click_rate.value,
            "click_to_open_rate": self.click_to_open.value,
        }


BlockArms = dict[str, ArmCounts]
"""Arm -> its counts, for one block."""


def read_arm_counts(
    client: Any,
    campaign_id: str,
    scope: str,
    *,
    guard: NodeGuard | None = None,
) -> dict[str, BlockArms]:
    """Every block's arms in ``scope``, summed over the shards (a recipient is in one shard).
    With a ``guard`` (the open path), a shard whose node fails or is skipped is left out."""
    summed = sum_shard_fields(
        lambda shard: keys.arm_counts(campaign_id, scope, shard), client, guard
    )
    found: dict[str, BlockArms] = defaultdict(dict)
    for (block, arm), counts in summed.items():
        found[block][arm] = ArmCounts(**{n: int(counts.get(n, 0)) for n in COUNT_NAMES})
    return dict(found)


def sum_shard_fields(
    key_of: Callable[[keys.Shard], str], client: Any, guard: NodeGuard | None = None
) -> dict[tuple[str, ...], dict[str, float]]:
    """The hashes ``key_of(shard)`` of every shard, summed field by field: a field
    ``a|b|…|figure`` is summed under the group ``(a, b, …)`` and its ``figure``. With a
    ``guard`` (the open path), a shard whose node fails or is skipped is left out."""
    batch = Batch(client, guard=guard)
    for shard in keys.SHARDS_READ:
        batch.hgetall(key_of(shard))
    summed: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for reply in batch.execute(raising=guard is None):
        if isinstance(reply, BaseException):
            continue
        for name, value in reply.items():
            field = name.decode() if isinstance(name, bytes) else name
            *group, figure = field.split("|")
            into = summed[tuple(group)]
            into[figure] = into.get(figure, 0) + float(value)
    return summed


def load_script(client: Any) -> None:
    """Load the marking script into the Redis behind ``client`` (every primary of a cluster)."""
    cluster = cluster_of(client)
    if cluster is None:
        client.script_load(_MARK)
        return
    for node in cluster.get_primaries():
        cluster.get_redis_connection(node).script_load(_MARK)
