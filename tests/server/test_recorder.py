"""Recording in the background: opens are written by a per-worker thread in batches, flushed
on demand (and at worker exit); a full queue or a failed write is counted, never raised."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.decision import Decision
from models.measurement.event_stream import campaign_event_count, campaign_event_entries
from models.recipients.upserts import ScoresUpsert
from models.storage import keys
from server.config import load_settings
from server.open.core import OpenCore
from server.open.recorder import RIDE_ALONG, Record, Recorder
from server.services import EXTENSION, Services
from server.serving import gunicorn_options
from tests.factories import FakeClock, store_block, store_recipient, variant

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def record(recipient_id: str = "anna") -> Record:
    decision = Decision("daily", "hero", "v", 1, NOW, "matched")
    return Record(recipient_id, "pseudo", decision, "open", "browser", "human", True, None, NOW)


def test_background_recording_writes_after_the_response_and_flushes(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(record_in_background=True)
    services: Services = app.extensions[EXTENSION]
    open_time: OpenCore = app.extensions["blanco.open"]
    store_block(services, [variant("v")])
    store_recipient(services, "anna")
    client = app.test_client()
    for _ in range(20):
        assert client.get(f"/i/daily/hero.png?r={services.signer.sign('anna')}").status_code == 200
    assert open_time.recorder.flush(timeout=5)
    assert len(campaign_event_entries(redis_client, "daily")) == 20
    assert redis_client.hexists(keys.decisions("anna"), "daily/hero")


def test_a_full_queue_counts_the_record_as_lost(services: Services) -> None:
    lost: list[tuple[int, Exception | None]] = []

    def on_lost(records: Sequence[Record], error: Exception | None) -> None:
        lost.append((len(records), error))

    recorder = Recorder(services, on_lost, background=True, max_queued=1)
    recorder._ensure_writer = lambda: None  # type: ignore[method-assign]  # no consumer
    recorder.submit(record())
    recorder.submit(record())
    assert lost == [(1, None)]


def test_a_failed_write_is_reported_not_raised(make_app: Callable[..., Flask]) -> None:
    app = make_app(redis_url="redis://127.0.0.1:1/0", redis_timeout_seconds=0.2)
    services: Services = app.extensions[EXTENSION]
    lost: list[tuple[int, bool]] = []

    def on_lost(records: Sequence[Record], error: Exception | None) -> None:
        lost.append((len(records), isinstance(error, redis.ConnectionError)))

    Recorder(services, on_lost, background=False).write([record(), record("bram")])
    assert lost == [(2, True)]


@pytest.mark.parametrize("background", [True, False])
def test_flush_is_immediate_when_nothing_is_queued(services: Services, background: bool) -> None:
    recorder = Recorder(services, lambda records, error: None, background=background)
    assert recorder.flush(timeout=0.5)


def test_an_exiting_gunicorn_worker_writes_what_is_queued(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(record_in_background=True)
    open_time: OpenCore = app.extensions["blanco.open"]
    for rid in ("anna", "bram", "chloe"):
        open_time.record(rid, record().shown, "open", "browser", "human", store_decision=True)
    open_time.metrics.cache("miss")  # still in the metrics' tally
    worker = SimpleNamespace(wsgi=app, pid=1234)
    server = SimpleNamespace(log=logging.getLogger("gunicorn-test"))
    exit_hook = gunicorn_options(load_settings({"signing_keys": "s" * 40}, environ={}))
    exit_hook["worker_exit"](server, worker)
    assert len(campaign_event_entries(redis_client, "daily")) == 3
    assert all(redis_client.exists(keys.decisions(r)) for r in ("anna", "bram", "chloe"))
    handed_over = open_time.metrics.registry.get_sample_value(
        "blanco_render_cache_total", {"result": "miss"}
    )
    assert handed_over == 1


def test_a_reopen_showing_the_same_content_does_not_rewrite_the_decision(
    client: FlaskClient, services: Services, redis_client: redis.Redis, clock: FakeClock
) -> None:
    store_block(
        services,
        [variant("hot", {"score": "p", "gte": 0.5}, priority=1), variant("cold")],
    )
    store_recipient(services, "anna", scores={"p": 0.9})
    url = f"/i/daily/hero.png?r={services.signer.sign('anna')}"
    client.get(url)
    first = redis_client.hget(keys.decisions("anna"), "daily/hero")
    clock.advance(minutes=5)
    client.get(url)
    assert redis_client.hget(keys.decisions("anna"), "daily/hero") == first  # same: no write
    assert len(campaign_event_entries(redis_client, "daily")) == 2  # both opens are counted
    services.recipients.upsert_scores(
        [
            ScoresUpsert.model_validate(
                {
                    "recipient_id": "anna",
                    "computed_at": "2026-11-23T06:00:00Z",
                    "scores": {"p": 0.1},
                }
            )
        ]
    )
    client.get(url)
    stored = redis_client.hget(keys.decisions("anna"), "daily/hero")
    assert stored is not None
    assert '"v": "cold"' in stored


def test_a_campaigns_kept_events_stay_about_the_configured_length(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    """Review: ``BLANCO_EVENT_STREAM_MAX_LENGTH`` trims each of a campaign's 16 shard streams,
    so a campaign keeps about 16 times the events its documentation promises."""
    app = make_app(event_stream_max_length=100)
    core: OpenCore = app.extensions["blanco.open"]
    services: Services = app.extensions[EXTENSION]
    decision = Decision("daily", "hero", "v", 1, NOW, "matched")
    pseudonyms = [services.signer.pseudonym(f"r{n}") for n in range(3200)]
    records = [
        Record(f"r{n}", pseudonym, decision, "open", "browser", "human", False, None, NOW)
        for n, pseudonym in enumerate(pseudonyms)
    ]
    for start in range(0, len(records), 200):
        core.recorder.write(records[start : start + 200])
    kept = campaign_event_count(redis_client, "daily")
    assert kept <= 3 * 100, f"{kept} events kept for a length of 100"


def riding_app(make_app: Callable[..., Flask]) -> tuple[Flask, Services, Recorder]:
    """Background recording whose writer thread waits a minute: only opens' reads can carry
    the records meanwhile."""
    app = make_app(record_in_background=True)
    services: Services = app.extensions[EXTENSION]
    recorder: Recorder = app.extensions["blanco.open"].recorder
    recorder.linger = 60.0
    store_block(services, [variant("v")])
    for rid in ("anna", "bram"):
        store_recipient(services, rid)
    return app, services, recorder


def test_waiting_records_travel_with_the_next_opens_read_on_a_single_redis(
    make_app: Callable[..., Flask], redis_client: redis.Redis, redis_url: str
) -> None:
    app, services, recorder = riding_app(make_app)
    client = app.test_client()
    anna = f"/i/daily/hero.png?r={services.signer.sign('anna')}"
    bram = f"/i/daily/hero.png?r={services.signer.sign('bram')}"

    assert client.get(anna).status_code == 200
    assert campaign_event_entries(redis_client, "daily") == []  # waiting: no round trip of its own
    assert client.get(bram).status_code == 200

    carried = campaign_event_entries(redis_client, "daily")
    if redis_url.startswith("redis+cluster"):  # counters live on other nodes: the writer's job
        assert not recorder.rides
        assert carried == []
    else:
        assert recorder.rides
        assert [fields["recipient"] for _, fields in carried] == [services.signer.pseudonym("anna")]
        assert redis_client.hexists(keys.decisions("anna"), "daily/hero")
    assert client.get(anna).status_code == 200  # carries bram's
    assert len(campaign_event_entries(redis_client, "daily")) == (0 if not recorder.rides else 2)


def test_a_carried_record_whose_write_fails_is_counted_lost_and_the_open_goes_on(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app, services, recorder = riding_app(make_app)
    recorder.rides = True  # on a cluster too: the read's batch then goes to several nodes
    lost: list[int] = []
    recorder.lost = lambda records, error: lost.append(len(records))
    recorder.submit(record())
    recorder.submit(record())
    for shard in keys.SHARDS_READ:  # every event stream of the campaign refuses XADD
        redis_client.set(keys.campaign_events("daily", shard), "not a stream")

    image = app.test_client().get(f"/i/daily/hero.png?r={services.signer.sign('bram')}")

    assert image.status_code == 200
    assert "X-Blanco-Fallback" not in image.headers
    assert lost == [2]


def test_one_read_carries_at_most_ride_along_records(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app, services, recorder = riding_app(make_app)
    recorder.rides = True  # on a cluster too: the read's batch then goes to several nodes
    for n in range(RIDE_ALONG + 2):
        recorder.submit(record(f"r{n}"))

    image = app.test_client().get(f"/i/daily/hero.png?r={services.signer.sign('bram')}")

    assert image.status_code == 200
    assert len(campaign_event_entries(redis_client, "daily")) == RIDE_ALONG
    assert len(recorder._pending) == 3  # two left over, and this open's own
