"""Blanco's configuration: one table of ``BLANCO_*`` settings, each typed, defaulted and described.

Settings are read from defaults, then the environment (``BLANCO_<NAME>``; the Redis URL is the
conventional ``REDIS_URL``), then explicit overrides. Invalid values stop start-up with a message
that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.numbers import is_currency
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.recipients.score_freshness import ScoreMaxAges
from models.storage.clients import RedisTarget, parse_redis_url

ENV_PREFIX = "BLANCO_"
PLACEHOLDER_KEYS = frozenset({"", "change-me", "changeme", "secret", "placeholder", "xxx"})
MIN_SIGNING_KEY_LENGTH = 32
SENDER_ENTRY = re.compile(r"[^@\s,]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")
"""An allowed AMP sender: an address, or ``@domain`` for every address of that domain."""


class ConfigError(RuntimeError):
    """Raised at start-up when a setting is missing or invalid."""


class Settings(BaseModel):
    """Every setting Blanco reads. The field description is the documentation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field(
        "",
        description="Redis to use (env `REDIS_URL`): `redis://`, `rediss://` or `unix://` for "
        "one Redis; `redis+cluster://host:port[,host:port…]` (or `rediss+cluster://`) for a "
        "Redis Cluster; `redis+sentinel://host:port[,host:port…]/service[/db]` (or "
        "`rediss+sentinel://`, sentinels' own password in `?sentinel_password=`) for the "
        "primary Sentinel names. Empty: `blanco serve`/`demo` start an embedded Redis under "
        "the data folder.",
    )
    signing_keys: tuple[str, ...] = Field(
        (),
        validate_default=True,
        description="Comma-separated HMAC keys for recipient tokens, at least 32 characters "
        "each. The first signs; all verify (rotation). Required.",
    )
    data_dir: Path = Field(
        Path("data"),
        description="Data folder: the embedded Redis keeps its AOF files here, and the workers "
        "their metrics (metrics/, emptied at start).",
    )
    public_url: str = Field(
        "http://localhost:8000",
        description="Base URL email clients reach Blanco on; used in generated image/click URLs.",
    )
    fallback_url: str = Field(
        "",
        description="Where a click goes when not even the block is known. Empty: Blanco's own "
        "neutral `/gone` page.",
    )
    bind: str = Field(
        "127.0.0.1:8000",
        description=(
            "Address gunicorn listens on. On a `HOST:PORT` bind each worker listens on a socket "
            "of its own (`SO_REUSEPORT`), so that the kernel spreads connections evenly over "
            "the workers; a `unix:` or `fd://` bind is one socket that every worker shares."
        ),
    )
    workers: int = Field(2, gt=0, description="gunicorn worker processes.")
    threads: int = Field(4, gt=0, description="Threads per gunicorn worker (gthread).")
    redis_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="Socket timeout for Redis calls; past it open-time routes serve fallbacks.",
    )
    redis_retry_after_seconds: float = Field(
        1.0,
        gt=0,
        description="After a Redis failure, open-time routes skip Redis for this long "
        "(circuit breaker) and serve fallbacks at once; then one request tries Redis again, "
        "and its success brings personal content back.",
    )
    config_check_seconds: float = Field(
        1.0,
        ge=0,
        description="How often each worker checks whether configuration (campaigns, blocks, "
        "newsletters, sends, feeds, live data) changed; an edit shows on every worker within "
        "about this long. 0 checks on every open (one more Redis round trip each).",
    )
    decision_ttl_seconds: int = Field(
        60 * 24 * 3600,
        gt=0,
        description="How long a recipient's decisions are kept (clicks follow them).",
    )
    profile_ttl_seconds: int = Field(
        400 * 24 * 3600,
        gt=0,
        description="How long a recipient's profile, scores and segments live after the last "
        "update.",
    )
    events_kept_per_recipient: int = Field(
        500, gt=0, description="Newest behavioural events kept per recipient; older ones go."
    )
    lifecycle_new_days: int = Field(
        30, gt=0, description="Lifecycle: a first order this recent makes a `new_customer`."
    )
    lifecycle_active_days: int = Field(
        90, gt=0, description="Lifecycle: a last order this recent makes a customer `active`."
    )
    lifecycle_lapsed_days: int = Field(
        180,
        gt=0,
        description="Lifecycle: a last order older than the active window but this recent is "
        "`lapsing`; older is `lapsed`.",
    )
    segmentation_currency: str = Field(
        "EUR", description="ISO 4217 currency in which RFM monetary values are summed."
    )
    segmentation_exchange_rates: str = Field(
        "",
        description="Rates into the segmentation currency, e.g. `USD=0.92,GBP=1.17`. Amounts "
        "in other currencies count for recency and frequency but not monetary value.",
    )
    score_max_age_hours: float = Field(
        7 * 24,
        gt=0,
        description="Default maximum age of a predictive score (by its `computed_at`); older "
        "scores count as missing at open time and in audience exports.",
    )
    score_max_ages: str = Field(
        "",
        description="Maximum age in hours per model or model-name prefix, e.g. "
        "`travel_propensity=24,affinity:*=72`; other models use the default.",
    )
    block_history: int = Field(
        200, gt=0, description="Block versions kept, so old clicks still find their target."
    )
    render_cache_ttl_seconds: int = Field(
        24 * 3600, gt=0, description="Lifetime of a rendered image in the Redis render cache."
    )
    render_cache_max_bytes: int = Field(
        512 * 1024 * 1024,
        gt=0,
        description="Cap on the render cache in Redis, in bytes; past it renders are served "
        "but not stored.",
    )
    render_cache_local_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Per-worker in-memory render cache size, in bytes. Personal renders (those "
        "that draw profile fields) live only here, so a send's burst re-renders what does not "
        "fit (see docs/benchmarks.md, the 10:00 burst).",
    )
    max_text_length: int = Field(
        200, gt=0, description="Longest text a placeholder-filled line may render, in characters."
    )
    max_image_pixels: int = Field(
        4_000_000, gt=0, description="Largest image (width × height) a block may declare."
    )
    bulk_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest admin API request body, in bytes."
    )
    asset_max_bytes: int = Field(
        5 * 1024 * 1024, gt=0, description="Largest uploaded image asset, in bytes."
    )
    asset_max_pixels: int = Field(
        25_000_000,
        gt=0,
        description="Most pixels an uploaded image may decode to (width × height × frames).",
    )
    event_stream_max_length: int = Field(
        1_000_000,
        gt=0,
        description="About how many events are kept per campaign (its opens, clicks and views, "
        "over its 16 shard streams; the oldest go first).",
    )
    apple_mpp_ranges_file: Path | None = Field(
        None,
        description="Apple's published egress-ip-ranges.csv; image requests from these "
        "addresses with no recognisable client count as Apple MPP prefetches.",
    )
    record_in_background: bool = Field(
        True,
        description="Write opens and clicks from a background thread per worker, batched, "
        "instead of before the response; false writes inline (tests use it).",
    )
    scanner_click_seconds: float = Field(
        10.0,
        ge=0,
        description="A click this soon after its newsletter send's time counts as a link "
        "scanner's; 0 turns the rule off.",
    )
    click_burst_seconds: float = Field(
        1.0,
        gt=0,
        description="Every link of an email clicked within this many seconds counts as a link "
        "scanner's (the click that completes the set and later ones).",
    )
    stats_retention_days: int = Field(
        400,
        gt=0,
        description="How long open/click counters, their exact per-arm counts and the "
        "experiment's per-recipient marks are kept (each from its last event).",
    )
    attribution_click_days: float = Field(
        7.0,
        gt=0,
        le=90,
        description="Conversions within this many days of a person's click are credited to "
        "it (the last click wins); the click's attribution token lives as long.",
    )
    attribution_view_days: float = Field(
        1.0,
        gt=0,
        le=30,
        description="Without such a click, conversions within this many days of a person's "
        "open are credited to it as view-through (reported apart). Machine opens never count.",
    )
    late_open_days: float = Field(
        7.0,
        gt=0,
        description="A click or open more than this many days after its send is *late*: the "
        "conversions credited to it are reported in their own row.",
    )
    click_token_param: str = Field(
        "bl_click",
        pattern=r"^([A-Za-z][A-Za-z0-9_]{0,31})?$",
        description="The query parameter a click's redirect adds to the landing page's URL: a "
        "signed attribution token (no personal data) that the conversion pixel or script "
        "hands back. Empty: no token (conversions then need the recipient id).",
    )
    click_token_hosts: str = Field(
        "",
        pattern=r"^[a-z0-9.,\s-]*$",
        description="Comma-separated hosts (`shop.example`, which also allows its subdomains) "
        "whose landing pages receive the click's attribution token. A link to any other host "
        "(a partner, a social network) gets none, so the token never reaches a third party. "
        "Empty: every landing page.",
    )
    pixel_orders_per_click: int = Field(
        3,
        ge=1,
        le=100,
        description="How many distinct orders one click's attribution token may report through "
        "the conversion pixel or script (which need no key): whoever holds a forwarded link "
        "cannot report more. Orders sent with an ingest key have no such limit.",
    )
    click_cookie_domain: str = Field(
        "",
        pattern=r"^(\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)?$",
        description="When Blanco is served on a subdomain of the shop (`email.shop.com`), the "
        "shop's domain (`shop.com`): the click's redirect then also sets the token as a "
        "first-party cookie for it, which the conversion pixel reads. Empty: no cookie.",
    )
    send_marks_days: int = Field(
        7,
        gt=0,
        description="How long a newsletter send's per-recipient marks (who reached, opened, "
        "clicked each arm) are kept; its exact counts stay for the retention. A send's event "
        "later than this may count its recipient again.",
    )
    amp_allowed_senders: str = Field(
        "",
        description="Comma-separated sender addresses (`news@example.com`) or whole domains "
        "(`@example.com`) whose AMP emails may read the `/amp/…` JSON (AMP for Email CORS). "
        "Empty: every AMP request is refused.",
    )
    channel_origins: tuple[str, ...] = Field(
        (),
        description="Comma-separated origins, e.g. `https://www.example.com`, whose pages may "
        "call the cross-channel endpoints (`/x/v1`) from a browser (CORS). Empty: none.",
    )
    log_level: str = Field("INFO", description="Python log level.")

    @field_validator("signing_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("signing_keys")
    @classmethod
    def _check_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if not keys:
            raise ValueError("at least one signing key is required")
        for key in keys:
            if key.lower() in PLACEHOLDER_KEYS:
                raise ValueError("a signing key is a placeholder; generate a random one")
            if len(key) < MIN_SIGNING_KEY_LENGTH:
                raise ValueError(
                    f"each signing key needs at least {MIN_SIGNING_KEY_LENGTH} characters"
                )
        return keys

    @field_validator("channel_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("channel_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(web_origin(origin) for origin in origins)

    @field_validator("segmentation_currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        if not is_currency(code.upper()):
            raise ValueError(f"unknown ISO 4217 currency code {code!r}")
        return code.upper()

    @field_validator("segmentation_exchange_rates")
    @classmethod
    def _rates_parse(cls, value: str) -> str:
        parse_exchange_rates(value)
        return value

    @field_validator("score_max_ages")
    @classmethod
    def _max_ages_parse(cls, value: str) -> str:
        ScoreMaxAges.parse(1, value)
        return value

    @field_validator("amp_allowed_senders")
    @classmethod
    def _senders_parse(cls, value: str) -> str:
        parse_allowed_senders(value)
        return value

    @cached_property
    def amp_senders(self) -> tuple[str, ...]:
        """The allowed AMP senders, lower-cased: addresses and ``@domain`` entries."""
        return parse_allowed_senders(self.amp_allowed_senders)

    @cached_property
    def click_token_host_list(self) -> tuple[str, ...]:
        """The hosts of ``click_token_hosts``, lower-cased, without a leading or trailing dot."""
        found = (h.strip().strip(".") for h in self.click_token_hosts.split(","))
        return tuple(h for h in found if h)

    @cached_property
    def max_score_ages(self) -> ScoreMaxAges:
        """The maximum age of each model's scores."""
        return ScoreMaxAges.parse(self.score_max_age_hours, self.score_max_ages)

    @model_validator(mode="after")
    def _lifecycle_order(self) -> Settings:
        if self.lifecycle_active_days >= self.lifecycle_lapsed_days:
            raise ValueError(
                "BLANCO_LIFECYCLE_ACTIVE_DAYS must be smaller than BLANCO_LIFECYCLE_LAPSED_DAYS"
            )
        return self

    @property
    def exchange_rates(self) -> dict[str, Decimal]:
        """Currency -> rate into ``segmentation_currency`` (which itself has rate 1)."""
        rates = parse_exchange_rates(self.segmentation_exchange_rates)
        rates[self.segmentation_currency] = Decimal(1)
        return rates

    @field_validator("redis_url")
    @classmethod
    def _usable_redis_url(cls, value: str) -> str:
        if value:
            parse_redis_url(value)  # RedisUrlError (a ValueError) names the problem, redacted
        return value

    @property
    def redis_target(self) -> RedisTarget:
        """What ``redis_url`` points at (it must be set)."""
        return parse_redis_url(self.redis_url)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def parse_exchange_rates(text: str) -> dict[str, Decimal]:
    """``USD=0.92,GBP=1.17`` as a dict; ValueError naming the bad part."""
    rates: dict[str, Decimal] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        code, _, rate = part.partition("=")
        code = code.strip().upper()
        try:
            value = Decimal(rate.strip())
        except InvalidOperation:
            value = Decimal(0)
        if not is_currency(code) or not value.is_finite() or value <= 0:
            raise ValueError(f"{part!r} is not CODE=positive-rate, e.g. USD=0.92")
        rates[code] = value
    return rates


def web_origin(text: str) -> str:
    """``text`` as a browser sends it in ``Origin`` (scheme and host lowercased); ValueError
    unless it is an http(s) origin: scheme, host and optional port, nothing else."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = urlsplit(""), None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "*" in text
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or text.endswith(("?", "#"))
    ):
        raise ValueError(f"{text!r} is not an origin like https://www.example.com (no path)")
    scheme = parts.scheme.lower()
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default_port = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


def parse_allowed_senders(text: str) -> tuple[str, ...]:
    """``news@example.com, @example.org`` as lower-cased entries; ValueError naming a bad one."""
    entries = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not SENDER_ENTRY.fullmatch(part):
            raise ValueError(f"{part!r} is neither an address (news@example.com) nor @domain")
        entries.append(part.lower())
    return tuple(entries)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return "REDIS_URL" if field == "redis_url" else ENV_PREFIX + field.upper()


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the environment, then ``overrides``; raise ConfigError on bad values."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in Settings.model_fields:
        if (raw := environ.get(env_name(field))) is not None:
            values[field] = raw
    values.update(overrides or {})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{env_name(str(err['loc'][0])) if err['loc'] else 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for docs and ``blanco config``."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(default)
        rows.append((env_name(name), str(default), field.description or ""))
    return rows
