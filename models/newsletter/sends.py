"""Sends: one newsletter going out on one day, with the audience exported for it.

The send id is the local date (``2026-11-23``). Image and click URLs carry it (``s=``), so
opens and clicks are attributed to the send, and slot rankings are kept per send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict

from models.errors import FieldError, InvalidInput, NotFound
from models.newsletter.newsletters import Newsletter
from models.storage import keys
from models.storage.batch import Batch
from models.storage.config_versions import announce_config


def send_id_for(day: dt.date) -> str:
    """The id of the send on ``day``."""
    return day.isoformat()


def valid_send_id(value: str) -> bool:
    """Whether ``value`` has the form of a send id."""
    try:
        return send_id_for(dt.date.fromisoformat(value)) == value
    except ValueError:
        return False


class SendCounts(BaseModel):
    """How the recipients considered for a send were sorted."""

    model_config = ConfigDict(extra="forbid")

    considered: int = 0
    audience: int = 0
    holdout: int = 0
    suppressed: int = 0
    no_consent: int = 0
    not_selected: int = 0


class Send(BaseModel):
    """One send of a newsletter, as recorded by its audience export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    campaign_id: str
    date: dt.date
    send_time: dt.datetime
    newsletter_version: int
    status: Literal["exporting", "exported", "failed"]
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    counts: SendCounts = SendCounts()


def plan_send(newsletter: Newsletter, day: dt.date | None, now: dt.datetime) -> Send:
    """The send of ``newsletter`` on ``day`` (default: today in its time zone), about to be
    exported; InvalidInput if the newsletter does not go out that day."""
    schedule = newsletter.schedule
    day = day or schedule.today(now)
    if not schedule.sends_on(day):
        raise InvalidInput(
            "the newsletter does not go out on that day",
            [FieldError(("date",), f"{day} is not one of {', '.join(schedule.weekdays)}")],
        )
    return Send(
        id=send_id_for(day),
        campaign_id=newsletter.campaign_id,
        date=day,
        send_time=schedule.send_time(day),
        newsletter_version=newsletter.version,
        status="exporting",
        started_at=now,
    )


class SendStore:
    """Reads and writes sends. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl = ttl_seconds

    def start(self, send: Send) -> None:
        """Record a send whose export begins; a previous export of the day is replaced."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.unlink(
            keys.send_members(send.campaign_id, send.id),
            keys.send_holdout(send.campaign_id, send.id),
        )
        self._queue_save(pipe, send)
        pipe.zadd(keys.send_index(send.campaign_id), {send.id: send.send_time.timestamp()})
        pipe.execute()
        announce_config(self.redis)

    def save(self, send: Send) -> None:
        """Store the send's record (e.g. with its final counts)."""
        pipe = self.redis.pipeline(transaction=True)
        self._queue_save(pipe, send)
        pipe.execute()
        announce_config(self.redis)

    def _queue_save(self, pipe: redis.client.Pipeline, send: Send) -> None:
        pipe.set(
            keys.send(send.campaign_id, send.id), send.model_dump_json(by_alias=True), ex=self.ttl
        )

    def get(self, campaign_id: str, send_id: str) -> Send | None:
        """The send, or None."""
        document = self.redis.get(keys.send(campaign_id, send_id))
        return Send.model_validate_json(document) if document else None

    def get_many(self, wanted: Sequence[tuple[str, str]]) -> list[Send | None]:
        """The sends of (campaign id, send id) pairs, in order (None where one is unknown), in
        one round trip (one per node of a cluster)."""
        batch = Batch(self.redis)
        asked = [batch.get(keys.send(campaign_id, send_id)) for campaign_id, send_id in wanted]
        replies = batch.execute() if asked else []
        return [Send.model_validate_json(replies[a]) if replies[a] else None for a in asked]

    def require(self, campaign_id: str, send_id: str) -> Send:
        """The send, or NotFound."""
        send = self.get(campaign_id, send_id)
        if send is None:
            raise NotFound(f"campaign {campaign_id!r} has no send {send_id!r}")
        return send

    def recent(self, campaign_id: str, limit: int = 100) -> list[Send]:
        """The newest sends first."""
        ids = self.redis.zrevrange(keys.send_index(campaign_id), 0, limit - 1)
        documents = self.redis.mget([keys.send(campaign_id, i) for i in ids]) if ids else []
        return [Send.model_validate_json(d) for d in documents if d]

    def holdout_ids(self, campaign_id: str, send_id: str) -> list[str]:
        """The recipient ids the send held out, sorted."""
        return sorted(self.redis.smembers(keys.send_holdout(campaign_id, send_id)))

    def was_sent_to(self, campaign_id: str, send_id: str, recipient_id: str) -> bool:
        """Whether the send's export included the recipient."""
        return bool(self.redis.sismember(keys.send_members(campaign_id, send_id), recipient_id))


class SendMemberships:
    """An erasure step: the recipient's place in every newsletter's sends (members, holdout,
    an export's working set) and suppression list."""

    name = "newsletter_sends"

    def erase(self, client: redis.Redis, recipient_id: str) -> int:
        """Remove the recipient from them; return how many memberships were removed."""
        campaign_ids = sorted(client.smembers(keys.CAMPAIGN_INDEX))
        pipe = client.pipeline(transaction=False)
        for campaign_id in campaign_ids:
            pipe.zrange(keys.send_index(campaign_id), 0, -1)
        send_lists = pipe.execute()
        for campaign_id, send_ids in zip(campaign_ids, send_lists, strict=True):
            pipe.srem(keys.suppressions(campaign_id), recipient_id)
            for send_id in send_ids:
                pipe.srem(keys.send_members(campaign_id, send_id), recipient_id)
                pipe.srem(keys.send_holdout(campaign_id, send_id), recipient_id)
                pipe.srem(keys.send_considered(campaign_id, send_id), recipient_id)
        return sum(int(n) for n in pipe.execute())
