"""The application's collaborators, built once by the factory and kept in ``app.extensions``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from models.api_keys import ApiKeyStore
from models.assets.asset_store import AssetStore
from models.assets.image_validation import ImageLimits
from models.assets.render_cache import RenderCache
from models.campaigns.campaign_store import CampaignStore
from models.campaigns.live_store import LiveStore
from models.campaigns.specs import utc_now
from models.conversions.attribution import Windows
from models.conversions.conversions import Conversions
from models.erasure import Eraser
from models.measurement.stats import StatsStore
from models.newsletter.audience_export import AudienceExport
from models.newsletter.feed_store import FeedStore
from models.newsletter.newsletter_store import NewsletterStore
from models.newsletter.sends import SendStore
from models.recipients.customer_data_store import CustomerDataStore
from models.recipients.recipient_store import RecipientStore
from models.recipients.segmentation import LifecycleThresholds
from models.recipients.segmentation_job import PersonaStore, SegmentationJob
from models.recipients.tombstones import Tombstones
from models.storage.clients import KnownNodes, connect
from server.config import Settings
from server.tokens import TokenSigner

EXTENSION = "blanco"


ADMIN_RETRIES = 2
"""Retries of a failed admin or job call (with a short backoff); open-time calls never retry."""


@dataclass
class Services:
    """Everything the views need. ``clock`` is injectable so tests can move time.

    ``redis`` (text) and ``redis_bytes`` serve the admin API and jobs, and retry a failed call
    a little; ``redis_open`` serves the open path and never retries: its timeout and the
    circuit breakers bound an open's latency. All three reach the same Redis (a single server,
    a Redis Cluster or the primary Sentinel names)."""

    settings: Settings
    redis: Any
    redis_bytes: Any
    redis_open: Any
    campaigns: CampaignStore
    recipients: RecipientStore
    api_keys: ApiKeyStore
    assets: AssetStore
    render_cache: RenderCache
    stats: StatsStore
    signer: TokenSigner
    tombstones: Tombstones
    customer_data: CustomerDataStore
    eraser: Eraser
    personas: PersonaStore
    segmentation: SegmentationJob
    feeds: FeedStore
    newsletters: NewsletterStore
    sends: SendStore
    live: LiveStore
    conversions: Conversions
    clock: Callable[[], dt.datetime] = field(default=utc_now)


def redis_clients(settings: Settings) -> tuple[Any, Any, Any]:
    """The admin text client, the bytes client and the open path's text client for the
    configured Redis (no I/O yet: a cluster is discovered on first use)."""
    target = settings.redis_target
    timeout = settings.redis_timeout_seconds
    known = KnownNodes(target.hosts)  # on a cluster: what one client discovers, all know
    text = connect(target, decode=True, timeout=timeout, retries=ADMIN_RETRIES, known=known)
    raw = connect(target, decode=False, timeout=timeout, known=known)
    open_path = connect(target, decode=True, timeout=timeout, known=known)
    return text, raw, open_path


def build_services(settings: Settings) -> Services:
    """Wire the stores to their Redis clients."""
    text, raw, open_path = redis_clients(settings)
    campaigns = CampaignStore(
        text, history=settings.block_history, max_pixels=settings.max_image_pixels
    )
    stats = StatsStore(
        text,
        retention_days=settings.stats_retention_days,
        send_marks_days=settings.send_marks_days,
    )
    personas = PersonaStore(text)
    tombstones = Tombstones(text, settings.signing_keys)
    live = LiveStore(text)
    signer = TokenSigner(settings.signing_keys)
    customer_data = CustomerDataStore(
        text,
        ttl_seconds=settings.profile_ttl_seconds,
        events_kept=settings.events_kept_per_recipient,
        tombstones=tombstones,
    )
    sends = SendStore(text, ttl_seconds=settings.decision_ttl_seconds)
    return Services(
        settings=settings,
        redis=text,
        redis_bytes=raw,
        redis_open=open_path,
        campaigns=campaigns,
        recipients=RecipientStore(
            text, ttl_seconds=settings.profile_ttl_seconds, tombstones=tombstones
        ),
        api_keys=ApiKeyStore(text),
        assets=AssetStore(
            raw,
            ImageLimits(max_bytes=settings.asset_max_bytes, max_pixels=settings.asset_max_pixels),
        ),
        render_cache=RenderCache(
            raw,
            ttl_seconds=settings.render_cache_ttl_seconds,
            local_bytes=settings.render_cache_local_bytes,
            max_bytes=settings.render_cache_max_bytes,
        ),
        stats=stats,
        signer=signer,
        tombstones=tombstones,
        customer_data=customer_data,
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
            max_ages=settings.max_score_ages,
        ),
        feeds=FeedStore(text),
        newsletters=NewsletterStore(text),
        sends=sends,
        live=live,
        conversions=Conversions(
            text,
            customer_data,
            pseudonym=signer.pseudonym,
            order_key=signer.order_key,
            rates=lambda: settings.exchange_rates,
            currency=settings.segmentation_currency,
            windows=Windows(
                click_days=settings.attribution_click_days,
                view_days=settings.attribution_view_days,
                late_days=settings.late_open_days,
            ),
            retention_days=settings.stats_retention_days,
            sends=sends,
        ),
    )


def audience_export(services: Services) -> AudienceExport:
    """The audience export over the app's stores."""
    return AudienceExport(
        services.redis,
        services.sends,
        services.signer.sign,
        services.settings.max_score_ages,
        clock=services.clock,
    )


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found
