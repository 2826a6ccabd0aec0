"""Set-up of ``benchmarks.burst``: a TCP Redis, the demo, N recipients, and the send's URLs.

The recipients are stored through the stores' bulk upserts; the send is today's send of the
demo newsletter, exported by the audience export (as ``blanco audience`` does), and each
recipient's four image URLs are the newsletter's embed code (hero + three slots, generic
dialect) with the export's fields put in for the merge tags, as an ESP does.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis

from models.newsletter.audience_export import SEND_COLUMN, TOKEN_COLUMN
from models.newsletter.sends import plan_send
from models.recipients.recipient_store import RecipientStore
from models.recipients.upserts import ProfileUpsert, ScoresUpsert, ScoreValue
from models.storage import keys
from models.storage.clients import connect
from server.demo.data import CAMPAIGN_ID
from server.demo.newsletter import TRIPS
from server.embed_codes import DIALECTS, newsletter_embed
from server.services import Services, audience_export

RECIPIENT_PREFIX = "burst-"
ESP_DIALECT = "generic"
CATEGORIES = sorted({trip[3] for trip in TRIPS})
LIFECYCLES = (("active", 0.55), ("new", 0.15), ("lapsing", 0.15), ("lapsed", 0.15))


def used_memory(client: redis.Redis) -> int:
    """Redis INFO memory ``used_memory`` in bytes."""
    return int(client.info("memory")["used_memory"])


@dataclass(frozen=True)
class StreamUsage:
    """A campaign's event streams (all shards): bytes (MEMORY USAGE) and events (XLEN)."""

    bytes: int
    events: int


def stream_usage(client: redis.Redis, campaign_id: str) -> StreamUsage:
    """What ``campaign_id``'s event streams hold now."""
    names = [keys.campaign_events(campaign_id, shard) for shard in keys.SHARDS_READ]
    size = sum(int(client.memory_usage(name, samples=0) or 0) for name in names)
    return StreamUsage(size, sum(int(client.xlen(name)) for name in names))


@dataclass(frozen=True)
class ArmUsage:
    """A campaign's exact arm figures (``models.measurement.arm_counts``): bytes (MEMORY
    USAGE of the flag and count hashes) and marks (a recipient in one arm of one scope)."""

    bytes: int
    marks: int
    send_bytes: int
    """Of ``bytes``, the marks of the sends (kept fewer days than the rest)."""


def arm_usage(client: redis.Redis, campaign_id: str) -> ArmUsage:
    """What ``campaign_id``'s exact arm figures hold now, over every scope."""
    size = marks = send = 0
    for shard in keys.SHARDS_READ:
        prefix = keys.arm_counts(campaign_id, "*", shard).rpartition(":*:")[0]
        for name in client.scan_iter(match=f"{prefix}:*:arm*", count=1000):
            used = int(client.memory_usage(name, samples=0) or 0)
            size += used
            if ":arm:" in name:
                marks += int(client.hlen(name))
                send += used if ":send:" in name else 0
    return ArmUsage(size, marks, send)


# the recipients


def recipient_id(n: int) -> str:
    """The id of burst recipient ``n``."""
    return f"{RECIPIENT_PREFIX}{n:07d}"


@dataclass(frozen=True)
class Audience:
    """The synthetic recipients' data, drawn once (deterministic for a seed)."""

    names: Sequence[str]
    lifecycles: Sequence[str]
    propensities: Sequence[float]
    affinities: Sequence[dict[str, float]]

    @classmethod
    def draw(cls, names: Sequence[str], rng: random.Random) -> Audience:
        """Lifecycles by share; travel propensity in [0.4, 1) (every recipient in the send and
        matching a hero variant); two category affinities each (so slot rankings differ)."""
        count = len(names)
        stages = [stage for stage, _ in LIFECYCLES]
        weights = [weight for _, weight in LIFECYCLES]
        return cls(
            names,
            rng.choices(stages, weights=weights, k=count),
            [0.4 + 0.6 * rng.random() for _ in range(count)],
            [{c: round(rng.random(), 3) for c in rng.sample(CATEGORIES, 2)} for _ in range(count)],
        )


def _profile(n: int, audience: Audience, updated: dt.datetime) -> ProfileUpsert:
    name = audience.names[n]
    attributes: dict[str, str | int | float | bool | list[str] | None] = {
        "first_name": name,
        "email": f"{recipient_id(n)}@example.com",
        "lifecycle": audience.lifecycles[n],
        "time_zone": "Europe/Amsterdam",
        "consent_email": True,
    }
    return ProfileUpsert.model_construct(
        recipient_id=recipient_id(n), attributes=attributes, updated_at=updated, source="crm"
    )


def _scores(n: int, audience: Audience, computed: dt.datetime) -> ScoresUpsert:
    values = {"travel_propensity": audience.propensities[n]}
    values.update({f"affinity:{c}": v for c, v in audience.affinities[n].items()})
    return ScoresUpsert.model_construct(
        recipient_id=recipient_id(n),
        scores={
            name: ScoreValue.model_construct(value=v, model_version="burst", computed_at=computed)
            for name, v in values.items()
        },
    )


def store_audience(services: Services, audience: Audience, now: dt.datetime) -> float:
    """Store every recipient's profile and scores through the stores' pipelined bulk upserts
    (profiles and scores side by side); return the seconds it took. Its own client with a
    30-second timeout: the app's 0.5 s is tight for chunks of writes on a busy machine."""
    client = connect(services.settings.redis_target, decode=True, timeout=30.0)
    store = RecipientStore(client, ttl_seconds=services.settings.profile_ttl_seconds)
    fresh = now - dt.timedelta(hours=1)
    count = len(audience.names)
    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            loads = [
                pool.submit(
                    store.upsert_profiles, (_profile(n, audience, fresh) for n in range(count))
                ),
                pool.submit(
                    store.upsert_scores, (_scores(n, audience, fresh) for n in range(count))
                ),
            ]
            for load in loads:
                load.result()
    finally:
        client.close()
    return time.perf_counter() - began


# the send


@dataclass(frozen=True)
class SendUrls:
    """Today's send: its id and, per exported burst recipient (in export order), the four
    image paths of their email."""

    send_id: str
    recipients: list[str]
    paths: list[list[str]]


def export_send(services: Services, now: dt.datetime) -> SendUrls:
    """Export today's send of the demo newsletter and fill its embed's image URLs per row."""
    newsletter = services.newsletters.require(CAMPAIGN_ID)
    blocks = [services.campaigns.require_block(CAMPAIGN_ID, b) for b in newsletter.blocks]
    embed = newsletter_embed(newsletter, blocks, ESP_DIALECT, "")
    merge_tag = DIALECTS[ESP_DIALECT].merge_tag
    templates = [part.image_url for part in embed.parts]
    tags = [(merge_tag(field), field) for field in embed.fields.values()]
    if {field for _, field in tags} != {TOKEN_COLUMN, SEND_COLUMN}:
        raise RuntimeError(f"unexpected merge fields {embed.fields}")
    send = plan_send(newsletter, None, now)
    recipients: list[str] = []
    paths: list[list[str]] = []
    for row in audience_export(services).rows(newsletter, send, now):
        if not str(row["recipient_id"]).startswith(RECIPIENT_PREFIX):
            continue  # the demo's own six
        filled = []
        for template in templates:
            for tag, field in tags:
                template = template.replace(tag, str(row[field]))
            filled.append(template)
        recipients.append(row["recipient_id"])
        paths.append(filled)
    return SendUrls(send.id, recipients, paths)
