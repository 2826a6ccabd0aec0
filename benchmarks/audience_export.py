"""``python -m benchmarks.audience_export [--recipients N]``: a newsletter's audience export over
N synthetic recipients (default 1,000,000), against docs/design.md's "streamed, constant memory
(< 200 MB peak)".

The export runs in a child process exactly as the API and ``blanco audience`` run it
(``AudienceExport.rows`` + ``encode_rows``, CSV, written to /dev/null), which reports its wall
time, rows, its RSS right after imports (idle) and its peak RSS (VmHWM), sampling its RSS at 10%,
50% and 100% of the rows. In the same run, a child that only reads (SCAN over the profiles +
pipelined HGETALL of profile and scores, no evaluation, no output) is the baseline; both run at
N/10 and at N recipients, so that a peak that grows with N shows. Loading the recipients (through
the stores' pipelined bulk upserts) is timed but is not the measured part. Uses REDIS_URL,
database 14 (flushed at start and end), or an embedded Redis in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import redis
import redis.utils

from benchmarks.audience import first_names
from benchmarks.harness import Target, bench_redis, heading, quotient, ratio, redacted, table
from models.campaigns.experiments import split_point
from models.campaigns.specs import CampaignSpec
from models.newsletter.audience_export import BATCH, columns, encode_rows
from models.newsletter.newsletters import NewsletterSpec
from models.newsletter.sends import Send, SendCounts, plan_send
from models.recipients.recipient_store import RecipientStore
from models.recipients.upserts import ProfileUpsert, ScoresUpsert, ScoreValue
from models.storage import keys
from models.storage.batch import Batch
from models.storage.clients import connect
from models.storage.scan import scan_every_primary
from server.config import load_settings
from server.services import Services, audience_export, build_services

DEFAULT_RECIPIENTS = 1_000_000
TARGET_PEAK_MB = 200.0
CONSTANT_SLACK_MB = 16.0
"""How much more the peak at N may be than at N/10 and still count as constant."""
CAMPAIGN = "bench-newsletter"
SCORE = "travel_propensity"
THRESHOLD = 0.7
HOLDOUT = 0.1
SIGNING_KEY = "bench-signing-key-0123456789abcdef-0123456789"
SAMPLE_FRACTIONS = (0.1, 0.5, 1.0)
_NAMES = first_names(1000)
_REPO = Path(__file__).resolve().parents[1]


# the synthetic audience


def recipient_id(n: int) -> str:
    """The id of synthetic recipient ``n``."""
    return f"r{n:07d}"


def consent(n: int) -> bool | None:
    """92% consent, 6% refused, 2% never asked (no attribute)."""
    slot = n % 50
    return None if slot == 0 else slot > 3


def score_value(n: int) -> float:
    """``travel_propensity`` spread evenly over [0.4, 1.0): half are at or over 0.7."""
    return 0.4 + 0.6 * ((n * 7919) % 1000) / 1000


def is_stale(n: int) -> bool:
    """5% of the scores are older than the model's maximum age."""
    return n % 20 == 7


def is_suppressed(n: int) -> bool:
    """1% of the recipients are on the newsletter's suppression list."""
    return n % 100 == 42


@dataclass(frozen=True)
class Moments:
    """The export's ``now`` and the times the synthetic data is written with."""

    now: dt.datetime
    fresh: dt.datetime
    stale: dt.datetime

    @classmethod
    def at(cls, now: dt.datetime, services: Services) -> Moments:
        """Fresh scores an hour old; stale ones a day past the model's maximum age."""
        max_age = services.settings.max_score_ages.max_age(SCORE)
        return cls(now, now - dt.timedelta(hours=1), now - max_age - dt.timedelta(days=1))


def profile(n: int, moments: Moments) -> ProfileUpsert:
    """Recipient ``n``'s profile (built without validation: the data is known to be valid)."""
    name = _NAMES[n % len(_NAMES)]
    attributes: dict[str, Any] = {"first_name": name, "email": f"{name.lower()}.{n}@example.com"}
    if (given := consent(n)) is not None:
        attributes["consent_email"] = given
    return ProfileUpsert.model_construct(
        recipient_id=recipient_id(n), attributes=attributes, updated_at=moments.fresh, source="crm"
    )


def scores(n: int, moments: Moments) -> ScoresUpsert:
    """Recipient ``n``'s ``travel_propensity`` score, fresh or stale."""
    computed = moments.stale if is_stale(n) else moments.fresh
    value = ScoreValue.model_construct(
        value=score_value(n), model_version="v3", computed_at=computed
    )
    return ScoresUpsert.model_construct(recipient_id=recipient_id(n), scores={SCORE: value})


def load_recipients(services: Services, start: int, stop: int, moments: Moments) -> float:
    """Store recipients ``start`` to ``stop - 1`` (profile + scores) through the stores'
    pipelined bulk upserts, profiles and scores side by side (one thread builds commands while
    Redis runs the other's); return the seconds it took. No tombstone check (as in
    ``benchmarks.ingest``): nobody was erased. Its own client: the app's 0.5-second socket
    timeout is tight for chunks of 3,000 writes on a busy machine."""
    client = connect(services.settings.redis_target, decode=True, timeout=30.0)
    store = RecipientStore(client, ttl_seconds=services.settings.profile_ttl_seconds)
    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            loads = [
                pool.submit(
                    store.upsert_profiles, (profile(n, moments) for n in range(start, stop))
                ),
                pool.submit(store.upsert_scores, (scores(n, moments) for n in range(start, stop))),
            ]
            for load in loads:
                load.result()
    finally:
        client.close()
    return time.perf_counter() - began


def store_newsletter(services: Services, recipients: int) -> int:
    """The campaign and its newsletter (audience rule, holdout), and the suppressions among the
    first ``recipients``; return how many are suppressed."""
    services.campaigns.create_campaign(CampaignSpec(id=CAMPAIGN))
    banner = {
        "type": "banner",
        "background": "#203040",
        "lines": [{"text": "{{ item_title }} for {{ first_name }}", "font_size": 32}],
    }
    spec = NewsletterSpec.model_validate(
        {
            "feed": "trips",
            "audience": {"score": SCORE, "gte": THRESHOLD},
            "holdout": HOLDOUT,
            "esp_fields": ["email", "first_name"],
            "slots": [
                {"layout": banner, "fallback": {"content": banner, "target_url": "https://x.test"}}
            ]
            * 3,
        }
    )
    services.newsletters.put(CAMPAIGN, spec)
    return services.newsletters.suppress(
        CAMPAIGN, (recipient_id(n) for n in range(recipients) if is_suppressed(n))
    )


def expected_counts(recipients: int) -> SendCounts:
    """How the export should sort the first ``recipients`` (worked out from the data's rules,
    independently of the export's code)."""
    counts = SendCounts(considered=recipients)
    for n in range(recipients):
        if is_suppressed(n):
            counts.suppressed += 1
        elif consent(n) is not True:
            counts.no_consent += 1
        elif is_stale(n) or not score_value(n) >= THRESHOLD:
            counts.not_selected += 1
        elif split_point(recipient_id(n), CAMPAIGN, "", "newsletter-holdout") < HOLDOUT:
            counts.holdout += 1
        else:
            counts.audience += 1
    return counts


# the child process


@dataclass(frozen=True)
class ChildJob:
    """What a child process runs: ``export`` (the audience export) or ``raw`` (reads only)."""

    mode: str
    redis_url: str
    signing_key: str
    now: str
    output: str = "/dev/null"
    sample_at: tuple[int, ...] = ()


@dataclass(frozen=True)
class ChildResult:
    """What a child measured. Memory in KB (``/proc/self/status``)."""

    mode: str
    seconds: float
    profiles: int
    rows: int
    chars: int
    idle_kb: int
    peak_kb: int
    samples: list[tuple[int, int]] = field(default_factory=list)
    """(rows written, RSS KB) at the ``sample_at`` points of the export and at its end."""
    send_id: str = ""

    @property
    def held_kb(self) -> int:
        """What the work itself held at its peak: peak RSS − idle RSS."""
        return self.peak_kb - self.idle_kb


def memory_kb() -> tuple[int, int]:
    """This process's current and peak resident set size, in KB."""
    found: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    except OSError:
        pass
    if len(found) < 2:  # not Linux: the peak is all getrusage knows
        import resource

        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        peak //= 1024 if sys.platform == "darwin" else 1
        return found.get("VmRSS", peak), peak
    return found["VmRSS"], found["VmHWM"]


def child_services(job: ChildJob) -> Services:
    """The services a ``blanco`` command builds, on the benchmark's Redis."""
    return build_services(
        load_settings({"redis_url": job.redis_url, "signing_keys": job.signing_key})
    )


def export_in_child(job: ChildJob, idle_kb: int) -> ChildResult:
    """Today's send of the newsletter, streamed as CSV to ``job.output`` as the CLI does."""
    services = child_services(job)
    now = dt.datetime.fromisoformat(job.now)
    newsletter = services.newsletters.require(CAMPAIGN)
    send = plan_send(newsletter, None, now)
    written = 0
    chars = 0
    samples: list[tuple[int, int]] = []
    pending = sorted(job.sample_at)

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal written
        for row in rows:
            written += 1
            yield row

    started = time.perf_counter()
    rows = counted(audience_export(services).rows(newsletter, send, now))
    with Path(job.output).open("w", encoding="utf-8", newline="") as out:
        for chunk in encode_rows(rows, columns(newsletter), "csv"):
            out.write(chunk)
            chars += len(chunk)
            while pending and written >= pending[0]:
                samples.append((written, memory_kb()[0]))
                pending.pop(0)
    seconds = time.perf_counter() - started
    if not samples or samples[-1][0] != written:
        samples.append((written, memory_kb()[0]))
    recorded = services.sends.require(CAMPAIGN, send.id)
    return ChildResult(
        "export",
        seconds,
        recorded.counts.considered,
        written,
        chars,
        idle_kb,
        memory_kb()[1],
        samples,
        send.id,
    )


def raw_read_in_child(job: ChildJob, idle_kb: int) -> ChildResult:
    """The baseline: the export's SCAN over the profile keys (every primary) and one batched
    HGETALL of profile and scores per recipient, in the export's batches; nothing evaluated or
    written."""
    client = child_services(job).redis
    read = 0
    started = time.perf_counter()
    profile_keys = scan_every_primary(client, keys.PROFILE_KEY_PATTERN, BATCH, key_type="hash")
    while batch := list(islice(profile_keys, BATCH)):
        reads = Batch(client)
        for key in batch:
            if parsed := keys.recipient_of(key):
                reads.hgetall(key)
                reads.hgetall(keys.scores(parsed[0]))
                read += 1
        reads.execute()
    seconds = time.perf_counter() - started
    return ChildResult("raw", seconds, read, 0, 0, idle_kb, memory_kb()[1])


def child_main(job: ChildJob) -> ChildResult:
    """Run ``job`` in this (child) process; the RSS right now is the idle baseline, since every
    import is done."""
    idle_kb = memory_kb()[0]
    if job.mode == "export":
        return export_in_child(job, idle_kb)
    if job.mode == "raw":
        return raw_read_in_child(job, idle_kb)
    raise ValueError(f"unknown child mode {job.mode!r}")


def run_child(job: ChildJob) -> ChildResult:
    """Run ``job`` in a fresh Python process and return what it measured. The job goes in on
    standard input (the Redis URL may hold a password), the result comes back as the last line
    of standard output."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.audience_export", "--child"],
        cwd=_REPO,
        input=json.dumps(asdict(job)),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        hint = (
            "\n(a Redis call outlasted the app's socket timeout, BLANCO_REDIS_TIMEOUT_SECONDS,"
            " 0.5 s by default, as it would for `blanco audience`)"
            if "TimeoutError" in completed.stderr
            else ""
        )
        raise RuntimeError(f"the {job.mode} child failed:\n{completed.stderr}{hint}")
    document = json.loads(completed.stdout.strip().splitlines()[-1])
    document["samples"] = [tuple(s) for s in document["samples"]]
    return ChildResult(**document)


# one run


@dataclass(frozen=True)
class Stage:
    """The export and its baseline at one audience size."""

    recipients: int
    load_seconds: float
    expected: SendCounts
    export: ChildResult
    raw: ChildResult
    send: Send

    @property
    def ratio(self) -> float:
        """Export time / raw read time."""
        return quotient(self.export.seconds, self.raw.seconds)


def measure_stage(
    services: Services, loaded: int, recipients: int, moments: Moments, output: str = "/dev/null"
) -> Stage:
    """Load recipients ``loaded`` to ``recipients - 1``, then run the raw read and the export
    over all ``recipients`` in child processes."""
    load_seconds = load_recipients(services, loaded, recipients, moments)
    expected = expected_counts(recipients)
    job = ChildJob(
        "raw",
        services.settings.redis_url,
        services.settings.signing_keys[0],
        moments.now.isoformat(),
    )
    raw = run_child(job)
    points = tuple(max(1, math.ceil(expected.audience * f)) for f in SAMPLE_FRACTIONS)
    export = run_child(
        ChildJob("export", job.redis_url, job.signing_key, job.now, output=output, sample_at=points)
    )
    send = services.sends.require(CAMPAIGN, export.send_id)
    return Stage(recipients, load_seconds, expected, export, raw, send)


def measure(
    services: Services,
    recipients: int,
    now: dt.datetime,
    output: str = "/dev/null",
    progress: Callable[[str], None] = lambda _: None,
) -> list[Stage]:
    """The newsletter and its suppressions, then the export at N/10 and at N recipients."""
    moments = Moments.at(now, services)
    store_newsletter(services, recipients)
    stages: list[Stage] = []
    loaded = 0
    for size in dict.fromkeys([max(1, recipients // 10), recipients]):
        progress(f"loading recipients {loaded:,} to {size:,}, then exporting {size:,}")
        stages.append(measure_stage(services, loaded, size, moments, output))
        loaded = size
    return stages


def to_stderr(message: str) -> None:
    """A progress line, off the report."""
    print(f"  … {message}", file=sys.stderr, flush=True)


# reporting


def mb(kb: float) -> str:
    """KB as MB (1024)."""
    return f"{kb / 1024:,.1f} MB"


def check(stage: Stage) -> list[str]:
    """What disagrees between the rows written, the recorded send and the expected counts."""
    problems: list[str] = []
    if stage.export.rows != stage.send.counts.audience:
        problems.append(
            f"{stage.export.rows:,} rows written but the send records "
            f"{stage.send.counts.audience:,}"
        )
    if stage.send.counts != stage.expected:
        problems.append(f"recorded {stage.send.counts!r}, expected {stage.expected!r}")
    if stage.raw.profiles != stage.recipients:
        problems.append(f"the raw read saw {stage.raw.profiles:,} of {stage.recipients:,}")
    return problems


def report(stages: Sequence[Stage]) -> list[Target]:
    """Print the tables; return the targets."""
    rows: list[list[str]] = []
    for stage in stages:
        for label, result in (("raw read", stage.raw), ("export", stage.export)):
            rows.append(
                [
                    f"{label}, {stage.recipients:,} recipients",
                    f"{result.rows:,}" if result is stage.export else "",
                    f"{result.seconds:,.1f}",
                    f"{result.profiles / result.seconds:,.0f}",
                    f"{result.rows / result.seconds:,.0f}" if result is stage.export else "",
                    ratio(stage.ratio) if result is stage.export else "",
                    mb(result.idle_kb),
                    mb(result.peak_kb),
                    mb(result.held_kb),
                ]
            )
    headers = [
        "child process",
        "rows",
        "seconds",
        "profiles/s",
        "rows/s",
        "÷ raw",
        "idle RSS",
        "peak RSS",
        "peak − idle",
    ]
    print(table(headers, rows))
    last = stages[-1]
    written = last.export.rows
    samples = ", ".join(
        f"{mb(kb)} at {done:,} rows ({quotient(done, written):.0%})"
        for done, kb in last.export.samples
    )
    print(f"  RSS during the {last.recipients:,}-recipient export: {samples}")
    counts = last.send.counts
    print(
        f"  send {CAMPAIGN}/{last.send.id}: {counts.audience:,} exported, {counts.holdout:,} held"
        f" out, {counts.suppressed:,} suppressed, {counts.no_consent:,} without consent,"
        f" {counts.not_selected:,} not selected (of {counts.considered:,});"
        f" {last.export.chars / 1e6:,.1f} M characters of CSV"
    )
    problems = [f"{s.recipients:,}: {p}" for s in stages for p in check(s)]
    for problem in problems:
        print(f"  MISMATCH at {problem}")
    first = stages[0]
    growth_kb = last.export.peak_kb - first.export.peak_kb
    targets = [
        Target(
            f"{last.recipients:,}-recipient audience export, child peak RSS",
            mb(last.export.peak_kb),
            f"< {TARGET_PEAK_MB:.0f} MB",
            last.export.peak_kb / 1024 < TARGET_PEAK_MB,
        ),
        Target(
            f"constant memory, peak at {first.recipients:,} → {last.recipients:,} recipients",
            f"{mb(first.export.peak_kb)} → {mb(last.export.peak_kb)}",
            f"≤ +{CONSTANT_SLACK_MB:.0f} MB",
            growth_kb / 1024 <= CONSTANT_SLACK_MB,
        ),
        Target(
            "rows written = send's recorded audience = expected counts",
            "yes" if not problems else f"{len(problems)} mismatches",
            "all equal",
            not problems,
        ),
    ]
    for target in targets:
        print(target.line())
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print the figures (or, with ``--child``, be the measured child process)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.audience_export", description=__doc__
    )
    parser.add_argument(
        "--recipients", type=int, default=DEFAULT_RECIPIENTS, help="profiles (1,000,000)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.recipients < 1:
        parser.error("--recipients must be at least 1")
    if args.child:
        document = json.loads(sys.stdin.read())
        document["sample_at"] = tuple(document["sample_at"])
        print(json.dumps(asdict(child_main(ChildJob(**document)))))
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="blanco-export-") as workdir,
        bench_redis(Path(workdir)) as bench,
    ):
        hiredis = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "no hiredis"
        print(
            f"Audience export (Redis {bench.version}, {bench.origin}: {redacted(bench.url)};"
            f" redis-py {redis.__version__}, {hiredis})"
        )
        settings = load_settings(
            {"redis_url": bench.url, "signing_keys": SIGNING_KEY, "data_dir": Path(workdir)}
        )
        services = build_services(settings)
        print(heading(f"Audience export of {args.recipients:,} recipients (CSV to /dev/null)"))
        try:
            stages = measure(services, args.recipients, dt.datetime.now(dt.UTC), progress=to_stderr)
        finally:
            # emptied in the background: a synchronous FLUSHDB of millions of keys outlasts the
            # 5-second socket timeout of the harness's own flush
            services.redis.flushdb(asynchronous=True)
            services.redis.close()
            services.redis_bytes.close()
        loads = " + ".join(f"{s.load_seconds:,.1f} s" for s in stages)
        load_rate = 2 * args.recipients / sum(s.load_seconds for s in stages)
        print(
            f"  loaded {args.recipients:,} profiles + scores in {loads} ({load_rate:,.0f} rows/s;"
            f" not measured); rule {SCORE} ≥ {THRESHOLD}, holdout {HOLDOUT:.0%}"
        )
        report(stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
