"""The application's collaborators, built once by the factory and kept in ``app.extensions``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from models.api_keys import ApiKeyStore
from models.asset_store import AssetStore
from models.audience_export import AudienceExport
from models.campaign_store import CampaignStore
from models.campaigns import utc_now
from models.customer_data_store import CustomerDataStore
from models.decision import DecisionEngine
from models.erasure import Eraser, Tombstones
from models.feed_store import FeedStore
from models.image_validation import ImageLimits
from models.live_store import LiveCache, LiveStore
from models.newsletter_store import NewsletterStore
from models.recipient_store import RecipientStore
from models.render_cache import RenderCache
from models.segmentation import LifecycleThresholds
from models.segmentation_job import PersonaStore, SegmentationJob
from models.sends import SendStore
from models.stats import CachedTotals, StatsStore
from server.config import Settings
from server.tokens import TokenSigner

EXTENSION = "blanco"


@dataclass
class Services:
    """Everything the views need. ``clock`` is injectable so tests can move time."""

    settings: Settings
    redis: Redis
    redis_bytes: Redis
    campaigns: CampaignStore
    recipients: RecipientStore
    api_keys: ApiKeyStore
    assets: AssetStore
    engine: DecisionEngine
    render_cache: RenderCache
    stats: StatsStore
    signer: TokenSigner
    customer_data: CustomerDataStore
    eraser: Eraser
    personas: PersonaStore
    segmentation: SegmentationJob
    feeds: FeedStore
    newsletters: NewsletterStore
    sends: SendStore
    live: LiveStore
    clock: Callable[[], dt.datetime] = field(default=utc_now)


def redis_clients(settings: Settings) -> tuple[Redis, Redis]:
    """A text client and a bytes client on one shared connection setup (no I/O yet)."""
    options = {
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 30,
        # no retry loop: the timeout and the open path's circuit breaker bound latency
        "retry": Retry(NoBackoff(), 0),
    }
    text = Redis.from_url(settings.redis_url, decode_responses=True, **options)
    raw = Redis.from_url(settings.redis_url, decode_responses=False, **options)
    return text, raw


def build_services(settings: Settings) -> Services:
    """Wire the stores to their Redis clients."""
    text, raw = redis_clients(settings)
    campaigns = CampaignStore(
        text, history=settings.block_history, max_pixels=settings.max_image_pixels
    )
    stats = StatsStore(text, retention_days=settings.stats_retention_days)
    personas = PersonaStore(text)
    tombstones = Tombstones(text, settings.signing_keys)
    live = LiveStore(text)
    return Services(
        settings=settings,
        redis=text,
        redis_bytes=raw,
        campaigns=campaigns,
        recipients=RecipientStore(
            text, ttl_seconds=settings.profile_ttl_seconds, tombstones=tombstones
        ),
        api_keys=ApiKeyStore(text),
        assets=AssetStore(
            raw,
            ImageLimits(max_bytes=settings.asset_max_bytes, max_pixels=settings.asset_max_pixels),
        ),
        engine=DecisionEngine(
            text,
            campaigns,
            ttl_seconds=settings.decision_ttl_seconds,
            totals=CachedTotals(stats, seconds=5.0),
            max_ages=settings.max_score_ages,
            tombstones=tombstones,
            live=LiveCache(live),
        ),
        render_cache=RenderCache(
            raw,
            ttl_seconds=settings.render_cache_ttl_seconds,
            local_bytes=settings.render_cache_local_bytes,
            max_bytes=settings.render_cache_max_bytes,
        ),
        stats=stats,
        signer=TokenSigner(settings.signing_keys),
        customer_data=CustomerDataStore(
            text,
            ttl_seconds=settings.profile_ttl_seconds,
            events_kept=settings.events_kept_per_recipient,
            tombstones=tombstones,
        ),
        eraser=Eraser(text, tombstones),
        personas=personas,
        segmentation=SegmentationJob(
            text,
            personas,
            LifecycleThresholds(
                new_days=settings.lifecycle_new_days,
                active_days=settings.lifecycle_active_days,
                lapsed_days=settings.lifecycle_lapsed_days,
            ),
            rates=settings.exchange_rates,
            ttl_seconds=settings.profile_ttl_seconds,
        ),
        feeds=FeedStore(text),
        newsletters=NewsletterStore(text),
        sends=SendStore(text, ttl_seconds=settings.decision_ttl_seconds),
        live=live,
    )


def audience_export(services: Services) -> AudienceExport:
    """The audience export over the app's stores."""
    return AudienceExport(
        services.redis, services.sends, services.signer.sign, services.settings.max_score_ages
    )


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found
