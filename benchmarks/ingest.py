"""``python -m benchmarks.ingest [--rows N] [--no-http]``: bulk ingest rates.

Measures rows per second through the stores' pipelined bulk upserts (the DESIGN target is
50,000 rows/s), the same commands through redis-py's ``Pipeline`` as a baseline, the whole bulk
path from JSON Lines bytes (parse, validate, store) that ``blanco import`` runs, for profiles,
scores, transactions and events, and then the same bodies POSTed to the admin API's bulk
endpoints over real HTTP (gunicorn on 127.0.0.1, one request per kind). Each HTTP rate is
printed with its ratio to the in-process JSON Lines path of the same kind, PASS when HTTP takes
at most twice as long (DESIGN: the API within 2x of the stores). Uses REDIS_URL, database 14
(flushed at start and end), or an embedded Redis in a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from pydantic import BaseModel

from benchmarks.harness import bench_redis, free_port, redacted
from benchmarks.http_load import HOST, GunicornProcess, HttpOptions, gunicorn_env
from models.api_keys import ApiKeyStore
from models.ingest.bulk_ingest import ingest_jsonl
from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.customer_data_store import CustomerDataStore
from models.recipients.recipient_store import RecipientStore
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from models.storage.batch import Command

M = TypeVar("M", bound=BaseModel)
TARGET_ROWS_PER_SECOND = 50_000
HTTP_WITHIN = 2.0
"""The API over HTTP may take at most this many times as long as the in-process path."""
TTL = 400 * 24 * 3600
COUNTRIES = ("NL", "BE", "DE", "FR", "GB")


def profile_document(n: int) -> dict[str, Any]:
    """A realistic profile row: a handful of typed attributes."""
    return {
        "recipient_id": f"r{n:07d}@example.com",
        "attributes": {
            "first_name": f"Name{n}",
            "salutation": "mx",
            "language": "nl",
            "country": COUNTRIES[n % len(COUNTRIES)],
            "time_zone": "Europe/Amsterdam",
            "consent_personalisation": True,
            "age": 20 + n % 60,
        },
        "updated_at": "2026-11-23T09:30:00+00:00",
    }


def scores_document(n: int) -> dict[str, Any]:
    """A scores row: three models with a version and a time."""
    computed = "2026-11-23T06:00:00+00:00"
    return {
        "recipient_id": f"r{n:07d}@example.com",
        "scores": {
            name: {"value": (n * k % 1000) / 1000, "model_version": "v3", "computed_at": computed}
            for k, name in ((7, "travel_propensity"), (13, "churn_risk"), (17, "affinity:city"))
        },
    }


def transaction_document(n: int) -> dict[str, Any]:
    """A transaction row (five orders per recipient)."""
    return {
        "recipient_id": f"r{n // 5:07d}@example.com",
        "order_id": f"o{n}",
        "at": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00+01:00",
        "amount": f"{n % 500}.95",
        "currency": "EUR",
        "category": "city_trip",
    }


def event_document(n: int) -> dict[str, Any]:
    """An event row without an id (its content is its key), ten per recipient."""
    return {
        "recipient_id": f"r{n // 10:07d}@example.com",
        "type": ("site_visit", "app_login", "cs_contact")[n % 3],
        "at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "channel": "web",
        "attributes": {"page": f"/trips/{n % 97}"},
    }


@dataclass(frozen=True)
class Figure:
    """One measured series."""

    label: str
    rows: int
    seconds: float
    against_target: bool

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        """The report line, with the ratio to the target when it is measured against it."""
        ratio = (
            f"  {self.rate / TARGET_ROWS_PER_SECOND:5.2f}× target" if self.against_target else ""
        )
        return f"  {self.label:<44} {self.rows:>9,} rows {self.rate:>9,.0f} rows/s{ratio}"


def timed(client: redis.Redis, work: Callable[[], object]) -> float:
    """Seconds ``work`` takes on an empty database."""
    client.flushdb()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def redis_py_pipeline(client: redis.Redis, commands: Iterator[Command]) -> None:
    """The baseline: the same commands through redis-py's Pipeline, 1,000 per round trip."""
    pipe = client.pipeline(transaction=False)
    for number, command in enumerate(commands, start=1):
        pipe.execute_command(*command)
        if number % 1000 == 0:
            pipe.execute()
    pipe.execute()


def jsonl_series(
    client: redis.Redis,
    label: str,
    lines: list[bytes],
    model: type[M],
    sink: Callable[[list[M]], int],
) -> Figure:
    """The full bulk path for one kind: JSON Lines bytes parsed, validated and stored."""
    seconds = timed(client, lambda: ingest_jsonl(lines, model, sink))
    return Figure(f"{label}, JSON Lines parse + store", len(lines), seconds, False)


@dataclass(frozen=True)
class BulkKind:
    """One bulk endpoint and its JSON Lines rows."""

    label: str
    path: str
    lines: list[bytes]


def measure(url: str, rows: int) -> tuple[list[Figure], list[BulkKind]]:
    """Every in-process figure: the target's (store upserts), a baseline, and the full bulk
    paths; and the bodies of each kind, for the HTTP series."""
    client = redis.Redis.from_url(url, decode_responses=True)
    store = RecipientStore(client, ttl_seconds=TTL)
    customer_data = CustomerDataStore(client, ttl_seconds=TTL, events_kept=500)
    profiles = [ProfileUpsert.model_validate(profile_document(n)) for n in range(rows)]
    scores = [ScoresUpsert.model_validate(scores_document(n)) for n in range(rows)]
    kinds = [
        BulkKind("profiles", "/api/v1/profiles/bulk", _lines(profile_document, rows)),
        BulkKind("scores", "/api/v1/scores/bulk", _lines(scores_document, rows)),
        BulkKind("transactions", "/api/v1/transactions/bulk", _lines(transaction_document, rows)),
        BulkKind("events (Lua)", "/api/v1/events/bulk", _lines(event_document, rows)),
    ]
    sinks: list[tuple[type[Any], Callable[[list[Any]], int]]] = [
        (ProfileUpsert, store.upsert_profiles),
        (ScoresUpsert, store.upsert_scores),
        (Transaction, customer_data.add_transactions),
        (CustomerEvent, customer_data.add_events),
    ]
    try:
        profile_s = timed(client, lambda: store.upsert_profiles(profiles))
        score_s = timed(client, lambda: store.upsert_scores(scores))
        if client.dbsize() != rows:
            raise RuntimeError(f"expected {rows:,} scores keys, found {client.dbsize():,}")
        baseline_s = timed(
            client,
            lambda: redis_py_pipeline(
                client,
                (
                    c
                    for items in (profiles, scores)
                    for item in items
                    for c in _commands(store, item)
                ),
            ),
        )
        figures = [
            Figure("profiles, store upsert", rows, profile_s, True),
            Figure("scores, store upsert", rows, score_s, True),
            Figure("profiles + scores, store upsert", 2 * rows, profile_s + score_s, True),
            Figure("  same commands via redis-py Pipeline", 2 * rows, baseline_s, True),
        ]
        figures += [
            jsonl_series(client, kind.label, kind.lines, model, sink)
            for kind, (model, sink) in zip(kinds, sinks, strict=True)
        ]
    finally:
        client.close()
    return figures, kinds


def _lines(document: Callable[[int], dict[str, Any]], rows: int) -> list[bytes]:
    return [json.dumps(document(n)).encode() for n in range(rows)]


def http_figures(url: str, kinds: list[BulkKind], workdir: Path) -> list[Figure]:
    """Each kind's rows as one JSON Lines body POSTed to gunicorn over HTTP on 127.0.0.1,
    on an empty database each (with a fresh admin key)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    port = free_port()
    options = HttpOptions(workers=1, threads=2)
    env = gunicorn_env(url, secrets.token_hex(32), port, workdir / "gunicorn", options)
    figures = []
    try:
        with GunicornProcess(env, port, workdir / "gunicorn.log", options.start_timeout):
            for kind in kinds:
                body = b"\n".join(kind.lines) + b"\n"
                client.flushdb()
                _, key = ApiKeyStore(client).create("benchmark", ["admin"])
                start = time.perf_counter()
                report = _post(port, kind.path, body, key)
                seconds = time.perf_counter() - start
                if report.get("stored") != len(kind.lines):
                    raise RuntimeError(f"{kind.path} stored {report.get('stored')}: {report}")
                figures.append(
                    Figure(f"{kind.label}, HTTP bulk endpoint", len(kind.lines), seconds, False)
                )
    finally:
        client.flushdb()
        client.close()
    return figures


def _post(port: int, path: str, body: bytes, key: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=600)
    try:
        connection.request(
            "POST",
            path,
            body,
            {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
        )
        response = connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {answer}")
    return answer


def verdict_line(http: Figure, inprocess: Figure) -> str:
    """The HTTP figure against the in-process path of the same kind (PASS when HTTP takes at
    most twice as long) and against the target (PASS at half of it or more)."""
    times = http.seconds / inprocess.seconds if inprocess.seconds > 0 else float("nan")
    overhead = "PASS" if times <= HTTP_WITHIN else "MISS"
    floor = TARGET_ROWS_PER_SECOND / HTTP_WITHIN
    rate = "PASS" if http.rate >= floor else "MISS"
    return (
        f"{http.line()}\n"
        f"      {times:4.2f}× the in-process time: {overhead} (≤ {HTTP_WITHIN:g}×); "
        f"{http.rate / TARGET_ROWS_PER_SECOND:4.2f}× target: {rate} (≥ {floor:,.0f} rows/s)"
    )


def _commands(store: RecipientStore, item: ProfileUpsert | ScoresUpsert) -> Iterator[Command]:
    if isinstance(item, ProfileUpsert):
        return store.profile_commands(item)
    return store.scores_commands(item)


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per series (50,000)")
    parser.add_argument(
        "--no-http", action="store_true", help="skip the series through gunicorn over HTTP"
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="blanco-ingest-") as workdir,
        bench_redis(Path(workdir)) as bench,
    ):
        print(f"Bulk ingest (Redis {bench.version}, {bench.origin}: {redacted(bench.url)})")
        print(f"target: {TARGET_ROWS_PER_SECOND:,} rows/s through the pipelined stores")
        figures, kinds = measure(bench.url, args.rows)
        for figure in figures:
            print(figure.line())
        if not args.no_http:
            print(f"admin API over HTTP (gunicorn on {HOST}), against the JSON Lines path above:")
            inprocess = figures[-len(kinds) :]
            for http, same in zip(
                http_figures(bench.url, kinds, Path(workdir)), inprocess, strict=True
            ):
                print(verdict_line(http, same))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
