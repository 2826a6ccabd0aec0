"""The report of ``benchmarks.burst``: the stages, the checks, memory and the sizing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.burst_wrk import WrkRun
from benchmarks.harness import ms, paragraph, quotient, table

P99_LIMIT = 0.050
IMAGES_PER_OPEN = 4
BURST_REQUESTS_PER_MILLION = 2_000_000
"""Apple MPP's prefetch of a 1M send: half the emails × four images (the 10:00 burst)."""
BURST_SECONDS = 15 * 60
BOX_CORES = 2
CPU_TARGET = 0.7
"""Share of a box's cores (or of Redis's one thread) a sizing plans to use at the burst's peak."""
MEMORY_HEADROOM = 1.5
"""Redis memory planned per byte measured: fragmentation, a fork's copy-on-write while it
rewrites the AOF, and per-recipient state that grows over days (see the assumptions)."""
SEND_SIZES = (1_000_000, 10_000_000)


@dataclass(frozen=True)
class Stage:
    """One wrk run of a slice of the send."""

    label: str
    run: WrkRun
    cache: Mapping[str, float]
    """Render cache lookups during the stage: hit_local, hit_redis, miss."""
    workers: tuple[float, ...] = ()
    """CPU seconds of each gunicorn worker during the stage, busiest first."""

    @property
    def problems(self) -> int:
        """Answers that were not 200, or were a fallback, plus socket errors."""
        return self.run.non200 + self.run.fallbacks + self.run.socket_errors

    @property
    def cpu_per_request(self) -> float:
        """Server + Redis CPU seconds per answer."""
        return quotient(self.run.server_cpu + self.run.redis_cpu, self.run.answers)


@dataclass(frozen=True)
class Memory:
    """Redis ``used_memory`` (bytes) around the run."""

    before: int
    loaded: int
    after: int
    recipients: int
    stream_bytes: int
    stream_events: int
    stream_cap: int
    """About how many events a campaign's streams keep (``BLANCO_EVENT_STREAM_MAX_LENGTH``)."""
    arm_bytes: int = 0
    arm_marks: int = 0
    """Recipients in an arm of a scope (the experiment to date, a send) of the exact figures."""
    send_mark_bytes: int = 0
    """Of ``arm_bytes``, the send's marks, which are kept ``send_marks_days``."""
    send_marks_days: int = 1

    @property
    def stored_per_recipient(self) -> float:
        """Profile + scores per recipient."""
        return quotient(self.loaded - self.before, self.recipients)

    @property
    def send_per_recipient(self) -> float:
        """What the export and the opens added per recipient (send membership, decisions,
        slot rankings, events, counters)."""
        return quotient(self.after - self.loaded, self.recipients)

    @property
    def total_per_recipient(self) -> float:
        """Both."""
        return quotient(self.after - self.before, self.recipients)

    def for_emails(self, emails: int) -> float:
        """Bytes for a daily send of ``emails``: everything but the event streams grows with
        the recipients, the send's marks times the days they are kept; the streams with the
        events, up to their cap."""
        earlier_marks = self.send_mark_bytes * (self.send_marks_days - 1)
        streamless = (
            self.after - self.before - self.stream_bytes + earlier_marks
        ) / self.recipients
        per_event = quotient(self.stream_bytes, self.stream_events)
        events = min(emails * self.stream_events / self.recipients, self.stream_cap)
        return emails * streamless + events * (0.0 if math.isnan(per_event) else per_event)


def stage_rows(stages: Sequence[Stage]) -> list[list[str]]:
    """One table row per stage."""
    rows = []
    for stage in stages:
        run = stage.run
        lookups = sum(stage.cache.values())
        rows.append(
            [
                stage.label,
                str(run.connections),
                f"{run.answers:,}",
                f"{run.rate:,.0f}",
                f"{run.rate / IMAGES_PER_OPEN:,.0f}",
                ms(run.p50),
                ms(run.p99),
                ms(run.max),
                f"{stage.run.server_cpu / run.answers * 1e6:,.0f}" if run.answers else "n/a",
                f"{stage.run.redis_cpu / run.answers * 1e6:,.0f}" if run.answers else "n/a",
                f"{quotient(stage.cache.get('miss', 0), lookups):.1%}",
                f"{quotient(run.wrk_cpu, run.elapsed):.0%}",
                "/".join(f"{quotient(w, sum(stage.workers)):.0%}" for w in stage.workers),
                str(stage.problems),
            ]
        )
    return rows


STAGE_HEADERS = [
    "stage",
    "conns",
    "answers",
    "req/s",
    "opens/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "server µs/req",
    "Redis µs/req",
    "renders",
    "wrk CPU",
    "worker split",
    "problems",
]


def sustained(stages: Sequence[Stage]) -> Stage | None:
    """The measured stage with the highest rate whose p99 stayed under 50 ms, with no problem
    (the warm-up, which starts on empty caches, excluded)."""
    kept = [
        s
        for s in stages
        if not s.label.startswith("warm-up") and s.run.p99 < P99_LIMIT and not s.problems
    ]
    return max(kept, key=lambda s: s.run.rate, default=None)


def plural(count: int, one: str, many: str) -> str:
    """``count`` and the noun in the right number."""
    return f"{count} {one if count == 1 else many}"


def sizing_lines(best: Stage | None, stages: Sequence[Stage], memory: Memory) -> list[str]:
    """How many 2-core boxes and how much Redis memory 1M and 10M daily sends need."""
    lines = [
        paragraph(
            f"Assumptions: the burst is Apple MPP's prefetch, {BURST_REQUESTS_PER_MILLION:,} image "
            f"requests per 1,000,000 emails within {BURST_SECONDS // 60} minutes, spread evenly "
            "(a real burst peaks higher at its start: add boxes for that), with this run's mix "
            "of renders and cache hits. (a) boxes at the sustained rate measured here, where wrk"
            " and Redis shared the box's 2 cores with gunicorn (conservative; only when a stage "
            f"kept p99 < 50 ms); (b) web boxes by gunicorn's CPU per request over the stages "
            f"after the warm-up at {CPU_TARGET:.0%} of 2 cores, and Redis primaries by Redis's "
            f"CPU per request at {CPU_TARGET:.0%} of its one thread (CPU time is less skewed by "
            "other load than rates are). Redis memory: every recipient stored (profile + scores)"
            " and opened once (one day's send state, and the marks of the sends of the days"
            " before that are still kept), per recipient as measured, the event "
            f"streams at most their cap, times {MEMORY_HEADROOM} for fragmentation, the AOF "
            "rewrite's fork and state that grows over days (a slot ranking per send opened, up "
            "to 32; decisions kept 60 days)."
        )
    ]
    measured = [s for s in stages if not s.label.startswith("warm-up")] or list(stages)
    answers = sum(s.run.answers for s in measured)
    server_cpu = quotient(sum(s.run.server_cpu for s in measured), answers)
    redis_cpu = quotient(sum(s.run.redis_cpu for s in measured), answers)
    if best is None:
        lines.append("  sizing: no stage kept p99 < 50 ms without problems: no (a) box count.")
    for emails in SEND_SIZES:
        need = BURST_REQUESTS_PER_MILLION * emails / 1_000_000 / BURST_SECONDS
        measured_gb = memory.for_emails(emails) / 1e9
        memory_gb = measured_gb * MEMORY_HEADROOM
        parts = []
        if best is not None:
            boxes = math.ceil(need / best.run.rate)
            parts.append(f"(a) {plural(boxes, 'box', 'boxes')} at {best.run.rate:,.0f} req/s")
        if not math.isnan(server_cpu + redis_cpu):
            web = math.ceil(need * server_cpu / (BOX_CORES * CPU_TARGET))
            primaries = math.ceil(need * redis_cpu / CPU_TARGET)
            parts.append(
                f"(b) {plural(web, 'web box', 'web boxes')} ({server_cpu * 1e6:,.0f} µs/req) + "
                f"{plural(primaries, 'Redis primary', 'Redis primaries')} "
                f"({redis_cpu * 1e6:,.0f} µs/req)"
            )
        lines.append(
            f"  sizing: {emails:,} emails: burst {need:,.0f} req/s; {'; '.join(parts)}; Redis "
            f"memory {memory_gb:,.1f} GB ({measured_gb:,.2f} GB from the per-recipient figures, "
            f"streams capped, × {MEMORY_HEADROOM})"
        )
    return lines


def memory_lines(memory: Memory) -> list[str]:
    """Redis memory per recipient."""
    return [
        f"  Redis used_memory: {memory.before / 1e6:,.1f} MB before the recipients, "
        f"{memory.loaded / 1e6:,.1f} MB after loading {memory.recipients:,}, "
        f"{memory.after / 1e6:,.1f} MB after the export and the burst",
        f"  per recipient: {memory.stored_per_recipient:,.0f} B stored (profile + scores), "
        f"{memory.send_per_recipient:,.0f} B of send state (export + opens), "
        f"{memory.total_per_recipient:,.0f} B in all; of that the campaign's event streams "
        f"{memory.stream_bytes / 1e6:,.1f} MB for {memory.stream_events:,} events "
        f"({quotient(memory.stream_bytes, memory.stream_events):,.0f} B each, kept up to about"
        f" {memory.stream_cap:,})",
        f"  exact arm figures: {memory.arm_bytes / 1e6:,.1f} MB for {memory.arm_marks:,} marks"
        f" (a recipient in one block's arm, per experiment and per send):"
        f" {quotient(memory.arm_bytes, memory.arm_marks):,.0f} B each; the send's"
        f" {memory.send_mark_bytes / 1e6:,.1f} MB are kept {memory.send_marks_days} days",
    ]


def breakdown_lines(deltas: Mapping[str, float]) -> list[str]:
    """Where the server's time went, from its own metrics over the whole burst: answers and
    mean answer time per route, renders and mean render time per block type."""
    lines = []
    for family, what in (
        ("blanco_http_request_duration_seconds", "route"),
        ("blanco_render_seconds", "block_type"),
    ):
        parts = []
        for key, count in sorted(deltas.items()):
            if not key.startswith(f"{family}_count{{") or not count:
                continue
            label = key[key.index("{") :]
            total = deltas.get(f"{family}_sum{label}", math.nan)
            name = label.strip("{}").partition(f"{what}=")[2].split(",")[0]
            if name == "/metrics":
                continue  # the benchmark's own scrapes
            parts.append(f"{name} {count:,.0f} × {ms(total / count)} ms")
        if parts:
            heading = "answers by route" if what == "route" else "renders by block type"
            lines.append(f"  {heading} (server-side mean): " + "; ".join(parts))
    return lines


def stages_table(stages: Sequence[Stage]) -> str:
    """The stages as a table."""
    return table(STAGE_HEADERS, stage_rows(stages))
