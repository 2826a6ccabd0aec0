"""Transactions and events in Redis, under the recipient's hash tag, each key with a TTL.

Per recipient (see ``models.storage.keys``):

- ``…:transactions``: hash of order id -> JSON transaction. Re-sending an order replaces it.
  Storing an order also raises the profile's hidden ``_last_order`` field (Unix time of the
  latest order) when the recipient has a profile, so that "seen within N days" conditions need
  no read of the orders (``models.recipients.recipient_store.last_order``).
- ``…:events``: hash of event key -> JSON event (the key is the event id, or ``#<hash>`` of
  the content for events without one).
- ``…:events-by-time``: sorted set, member ``<type>|<event key>``, score the event time in Unix
  seconds. Only the newest ``events_kept`` events are kept; older ones leave both keys.

The decision engine reads the index alone, in its one pipelined round trip: e.g.
``ZREVRANGEBYSCORE <events-by-time> +inf <now - 30 days> WITHSCORES LIMIT 0 50`` gives the
types and times of the recent events, so "a cs_contact in the last 7 days" or "a site visit
without a booking" needs no further read (see ``queue_recent_event_index``).

With tombstones (``models.erasure``), transactions and events of erased recipients are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import redis

from models.newsletter.recipient_history import bought_commands
from models.recipients.customer_data import (
    MEMBER_SEPARATOR,
    CustomerEvent,
    EventRef,
    Transaction,
    parse_event_index,
)
from models.recipients.recipient_store import LAST_ORDER_FIELD
from models.recipients.tombstones import Tombstones, send_unless_erased
from models.storage import keys
from models.storage.batch import Batch, Command

# Store one transaction (replacing an earlier version of the order); if the recipient has a
# profile (KEYS[2]), raise its latest-order time (field ARGV[4]) to this order's if later. The
# profile's lifetime is left alone.
_ADD_TRANSACTION = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local latest = redis.call('HGET', KEYS[2], ARGV[4])
  if not latest or tonumber(ARGV[3]) > tonumber(latest) then
    redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
  end
end
return 1
"""

# Store one event, replacing an earlier version of it (its type may have changed), then trim
# the index to the newest ARGV[5] events, dropping the trimmed ones from the hash too.
_ADD_EVENT = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
if previous then
  redis.call('ZREM', KEYS[2], cjson.decode(previous)['type'] .. '|' .. ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then
  local dropped = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  for _, member in ipairs(dropped) do
    redis.call('HDEL', KEYS[1], string.sub(member, string.find(member, '|', 1, true) + 1))
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 1
"""


def recent_event_keys(recipient_id: str) -> list[str]:
    """The keys event conditions need: the events-by-time index (a sorted set of
    ``<type>|<event key>`` scored by Unix time)."""
    return [keys.events_by_time(recipient_id)]


def queue_recent_event_index(
    batch: Batch, recipient_id: str, since: dt.datetime, limit: int = 100
) -> int:
    """Queue, on ``batch``, the read of the recipient's events since ``since``, newest first;
    its reply goes to ``parse_event_index``. Returns the reply's position."""
    return int(
        batch.zrevrangebyscore(
            keys.events_by_time(recipient_id),
            "+inf",
            since.timestamp(),
            start=0,
            num=limit,
            withscores=True,
        )
    )


def _recipient(item: Transaction | CustomerEvent) -> str:
    return item.recipient_id


class CustomerDataStore:
    """Writes and reads transactions and events. Expects a ``decode_responses=True`` client."""

    def __init__(
        self,
        client: redis.Redis,
        ttl_seconds: int,
        events_kept: int,
        tombstones: Tombstones | None = None,
    ) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        self.events_kept = events_kept
        self.tombstones = tombstones
        """With tombstones, writes for erased recipients are refused (ErasedRecipients)."""

    def add_transactions(self, transactions: Iterable[Transaction]) -> int:
        """Store transactions by order id, sent in pipelined chunks; return how many."""
        sha = self.redis.script_load(_ADD_TRANSACTION)  # idempotent; EVALSHA then finds it
        return send_unless_erased(
            self.redis,
            self.tombstones,
            transactions,
            lambda transaction: self._transaction_commands(sha, transaction),
            _recipient,
        )

    def add_events(self, events: Iterable[CustomerEvent]) -> int:
        """Store events by natural key, sent in pipelined chunks; return how many."""
        sha = self.redis.script_load(_ADD_EVENT)  # idempotent; EVALSHA then finds it
        return send_unless_erased(
            self.redis,
            self.tombstones,
            events,
            lambda event: self._event_commands(sha, event),
            _recipient,
        )

    def _transaction_commands(self, sha: str, transaction: Transaction) -> Iterator[Command]:
        rid = transaction.recipient_id
        if transaction.type == "refund":  # kept, but not an order: the last order stays
            yield ("HSET", keys.transactions(rid), transaction.order_id, transaction.stored())
            yield ("EXPIRE", keys.transactions(rid), self.ttl)
            return
        yield (
            "EVALSHA",
            sha,
            2,
            keys.transactions(rid),
            keys.profile(rid),
            transaction.order_id,
            transaction.stored(),
            int(transaction.at.timestamp()),
            LAST_ORDER_FIELD,
            self.ttl,
        )
        categories = {i.category for i in transaction.items if i.category is not None}
        if transaction.category is not None:
            categories.add(transaction.category)
        yield from bought_commands(
            rid, [i.id for i in transaction.items], sorted(categories), self.ttl
        )

    def _event_commands(self, sha: str, event: CustomerEvent) -> Iterator[Command]:
        rid = event.recipient_id
        yield (
            "EVALSHA",
            sha,
            2,
            keys.events(rid),
            keys.events_by_time(rid),
            event.key,
            event.stored(),
            event.index_member,
            repr(event.at.timestamp()),
            self.events_kept,
            self.ttl,
        )

    @staticmethod
    def recent_event_keys(recipient_id: str) -> list[str]:
        """The keys event conditions load (see the module docstring for their shape)."""
        return recent_event_keys(recipient_id)

    def transactions(self, recipient_id: str) -> list[Transaction]:
        """The recipient's transactions, oldest first."""
        raw = self.redis.hgetall(keys.transactions(recipient_id))
        found = [Transaction.from_stored(recipient_id, document) for document in raw.values()]
        return sorted(found, key=lambda t: (t.at, t.order_id))

    def recent_events(
        self, recipient_id: str, since: dt.datetime | None = None, limit: int = 100
    ) -> list[CustomerEvent]:
        """The recipient's kept events since ``since`` (all when None), newest first."""
        low = "-inf" if since is None else since.timestamp()
        index = self.redis.zrevrangebyscore(
            keys.events_by_time(recipient_id), "+inf", low, start=0, num=limit
        )
        if not index:
            return []
        refs = [member.partition(MEMBER_SEPARATOR)[2] for member in index]
        documents = self.redis.hmget(keys.events(recipient_id), refs)
        return [
            CustomerEvent.from_stored(recipient_id, document)
            for document in documents
            if document is not None
        ]

    def recent_event_refs(self, recipient_id: str, since: dt.datetime) -> list[EventRef]:
        """Types and times of the recipient's events since ``since``, newest first (the
        decision engine's view, read on its own here)."""
        batch = Batch(self.redis)
        index = queue_recent_event_index(batch, recipient_id, since)
        return parse_event_index(batch.execute()[index])
