"""Section 7: what each stage of a cache-hit open costs, in µs per request (wall time and the
request thread's CPU time), in-process.

Method: the real functions of the open path are wrapped in timers for the duration of the
section only: instance attributes that shadow the methods of the app's own ``OpenCore``,
``ConfigCache``, ``Drawing`` and ``Metrics`` objects, and (for the parts of the Redis read) the
methods of ``models.storage.batch.Batch`` and its module's ``_send``, all put back afterwards;
nothing in ``server/`` or ``models/`` changes. Each stage's time is exclusive: a timed call inside
another (``Metrics.decision`` inside ``OpenCore.decide``) counts for its own stage only. The
timers' own cost, measured on an empty function (the least of several batches), is taken off
every timed call. What no timer covers (Flask's ``__call__``, Blanco's WSGI middleware: routing,
query parsing, the request id, headers; and the glue between stages) is the whole timed open
minus the stages. Timed and untimed series run in interleaved rounds; the bare Flask app's
in-process time is printed for scale.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from flask import Flask

from benchmarks.bare_app import PATH as BARE_PATH
from benchmarks.bare_app import create_bare_app
from benchmarks.harness import (
    Timing,
    heading,
    paragraph,
    quotient,
    recording_flush,
    run_series,
    services_of,
    table,
    with_redis_cpu,
)
from benchmarks.open_route import CACHE_HIT_RECIPIENT, UNBOUNDED, WsgiReplay, prebuilt_environ
from models.storage import batch as batch_module
from models.storage.batch import Batch
from server.demo.data import BLOCK_ID, CAMPAIGN_ID
from server.open.core import OpenCore
from server.open.routes import CORE
from server.urls import TOKEN_PARAM, image_path

F = TypeVar("F", bound=Callable[..., Any])
CALIBRATION_CALLS = 20_000
CALIBRATION_BATCHES = 10
REST = "WSGI entry: Flask.__call__, Blanco's middleware (route, query, request id, headers), glue"


@dataclass(frozen=True)
class StageOptions:
    """How long section 7 measures."""

    rounds: int = 3
    seconds: float = 1.0
    warmup: int = 300


@dataclass(frozen=True)
class Stage:
    """One stage of the open: its name in the report, and the (object, attribute) timed."""

    name: str
    owner: Any
    attribute: str


class StageClock:
    """Exclusive wall time and thread CPU time per stage, over the calls made on the thread
    that created it (the background writer's calls, if any, are not timed)."""

    def __init__(self) -> None:
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._children: list[list[float]] = []
        self._thread = threading.get_ident()

    def wrap(self, name: str, function: F) -> F:
        """``function``, timing its calls as stage ``name``."""
        stack, wall, cpu, calls = self._children, self.wall, self.cpu, self.calls
        clock, thread_clock, ident, thread = (
            time.perf_counter,
            time.thread_time,
            threading.get_ident,
            self._thread,
        )

        def timed(*args: Any, **kwargs: Any) -> Any:
            if ident() != thread:
                return function(*args, **kwargs)
            stack.append([0.0, 0.0])
            start, start_cpu = clock(), thread_clock()
            try:
                return function(*args, **kwargs)
            finally:
                used_cpu, elapsed = thread_clock() - start_cpu, clock() - start
                inner_wall, inner_cpu = stack.pop()
                wall[name] += elapsed - inner_wall
                cpu[name] += used_cpu - inner_cpu
                calls[name] += 1
                if stack:
                    stack[-1][0] += elapsed
                    stack[-1][1] += used_cpu

        return timed  # type: ignore[return-value]


def _nothing() -> None:
    """The empty function the timers are calibrated on."""


@dataclass(frozen=True)
class Cost:
    """Wall time and this thread's CPU time (the same unit for both)."""

    wall: float
    cpu: float

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self.wall - other.wall, self.cpu - other.cpu)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu)

    def times(self, factor: float) -> Cost:
        """Both figures times ``factor``."""
        return Cost(self.wall * factor, self.cpu * factor)


NOTHING = Cost(0.0, 0.0)


@dataclass(frozen=True)
class Calibration:
    """Seconds a timer adds per call: inside the time it gives its stage, and outside it (the
    latter lands in the caller's stage, or in the untimed rest)."""

    inside: Cost
    outside: Cost

    @property
    def per_call(self) -> Cost:
        """All a timer adds per call."""
        return self.inside + self.outside


def _run_for(calls: int, function: Callable[[], None]) -> Cost:
    start, start_cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        function()
    return Cost(time.perf_counter() - start, time.thread_time() - start_cpu)


def calibrate(calls: int = CALIBRATION_CALLS, batches: int = CALIBRATION_BATCHES) -> Calibration:
    """The timers' own cost, measured on an empty function: the least over ``batches`` batches
    of ``calls`` calls (other work on the machine only ever adds to it)."""
    found: list[Calibration] = []
    for _ in range(batches):
        clock = StageClock()
        empty = clock.wrap("empty", _nothing)
        added = (_run_for(calls, empty) - _run_for(calls, _nothing)).times(1 / calls)
        inside = Cost(clock.wall["empty"] / calls, clock.cpu["empty"] / calls)
        outside = added - inside
        found.append(Calibration(inside, Cost(max(0.0, outside.wall), max(0.0, outside.cpu))))
    return Calibration(
        Cost(min(c.inside.wall for c in found), min(c.inside.cpu for c in found)),
        Cost(min(c.outside.wall for c in found), min(c.outside.cpu for c in found)),
    )


def stages_of(core: OpenCore) -> list[Stage]:
    """The timed stages of a block image open, in the order an open goes through them."""
    metrics = core.metrics
    return [
        Stage("token verify (HMAC-SHA256)", core, "identify"),
        Stage("client class (User-Agent, Accept)", core, "classify_image_request"),
        Stage("configuration check (worker cache)", core.config, "refresh"),
        Stage("Redis read: queue the commands, shape the result", core, "visitor"),
        Stage("Redis read: pack the commands (RESP)", Batch, "_pack"),
        Stage("Redis read: send (socket write)", batch_module, "_send"),
        Stage("Redis read: wait for the replies, parse them (hiredis)", Batch, "_read"),
        Stage("Redis read: connection check, guard, reply shapes", Batch, "execute"),
        Stage("record: earlier opens' records carried in the read", core.recorder, "ride_along"),
        Stage("decide", core, "decide"),
        Stage("cached bytes: render request and its hash", core, "draw"),
        Stage("cached bytes: render-cache lookup", core.drawing, "_cached"),
        Stage("record (queued for the next reads or the writer)", core, "record"),
        Stage("record (queued for the next reads or the writer)", core, "recorded_send"),
        *(
            Stage("metrics", metrics, name)
            for name in ("count_request", "decision", "cache", "fallback", "observe_render")
        ),
    ]


class Timers:
    """The stages' timers, installed on the live objects and removed again."""

    def __init__(self, stages: list[Stage], clock: StageClock) -> None:
        self.stages = stages
        self.clock = clock
        self._shadowed: list[tuple[Stage, Any]] = []

    def __enter__(self) -> Timers:
        for stage in self.stages:
            own = vars(stage.owner).get(stage.attribute)  # an instance attribute, if any
            self._shadowed.append((stage, own))
            original = getattr(stage.owner, stage.attribute)
            setattr(stage.owner, stage.attribute, self.clock.wrap(stage.name, original))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._shadowed:
            stage, own = self._shadowed.pop()
            if own is not None:
                setattr(stage.owner, stage.attribute, own)
            else:
                delattr(stage.owner, stage.attribute)  # the class's method shows again


@dataclass(frozen=True)
class StageCosts:
    """µs per request of each stage (wall and this thread's CPU), of the whole timed open, of
    the untimed open, and what the timers cost."""

    stages: dict[str, Cost]
    calls: dict[str, float]
    timed: Cost
    untimed: float
    timer: Calibration
    process_cpu: float
    redis_cpu: float
    bare: Cost

    @property
    def timer_cost(self) -> Cost:
        """µs per request the timers themselves cost."""
        return self.timer.per_call.times(sum(self.calls.values()) * 1e6)

    @property
    def whole(self) -> Cost:
        """The timed open less its timers' cost."""
        return self.timed - self.timer_cost

    @property
    def rest(self) -> Cost:
        """What no stage accounts for."""
        return sum(self.stages.values(), NOTHING).times(-1) + self.whole


class ThreadCpu:
    """A request function for ``run_series`` that also adds up this thread's CPU time."""

    def __init__(self, request: Callable[[int], float]) -> None:
        self.request = request
        self.cpu = 0.0
        self.count = 0

    def __call__(self, index: int) -> float:
        start = time.thread_time()
        latency = self.request(index)
        self.cpu += time.thread_time() - start
        self.count += 1
        return latency


def measure(app: Flask, options: StageOptions) -> StageCosts:
    """Interleaved rounds of the cache-hit open, untimed and timed, and the bare app."""
    services = services_of(app)
    core: OpenCore = app.extensions[CORE]
    token = services.signer.sign(CACHE_HIT_RECIPIENT)
    environ = prebuilt_environ(image_path(CAMPAIGN_ID, BLOCK_ID), {TOKEN_PARAM: token})
    hit = WsgiReplay(app, [environ])
    bare = WsgiReplay(create_bare_app(), [prebuilt_environ(BARE_PATH)])
    for replay in (hit, bare):
        run_series(replay, count=options.warmup, max_seconds=10)
    clock = StageClock()
    timers = Timers(stages_of(core), clock)
    timer = calibrate()
    series = partial(
        run_series, count=UNBOUNDED, max_seconds=options.seconds, settle=recording_flush(app)
    )
    timed_hit, bare_cpu = ThreadCpu(hit), ThreadCpu(bare)
    untimed: list[Timing] = []
    timed: list[Timing] = []
    bare_parts: list[Timing] = []
    for _ in range(options.rounds):
        untimed.append(with_redis_cpu(services.redis, partial(series, hit)))
        with timers:
            timed.append(series(timed_hit))
        bare_parts.append(run_series(bare_cpu, count=UNBOUNDED, max_seconds=options.seconds))
    problems = hit.problems + bare.problems
    if problems:
        raise RuntimeError(f"the open did not answer 200 image/png without fallback: {problems}")
    plain, with_timers = Timing.merged(untimed), Timing.merged(timed)
    per_request = 1e6 / with_timers.count
    return StageCosts(
        stages={
            name: (
                Cost(clock.wall[name], clock.cpu[name]) - timer.inside.times(clock.calls[name])
            ).times(per_request)
            for name in clock.calls
        },
        calls={name: clock.calls[name] / with_timers.count for name in clock.calls},
        timed=Cost(_mean_us(with_timers), timed_hit.cpu / timed_hit.count * 1e6),
        untimed=_mean_us(plain),
        timer=timer,
        process_cpu=quotient(plain.cpu, plain.count) * 1e6,
        redis_cpu=quotient(plain.redis_cpu, plain.count) * 1e6,
        bare=Cost(_mean_us(Timing.merged(bare_parts)), bare_cpu.cpu / bare_cpu.count * 1e6),
    )


def _mean_us(timing: Timing) -> float:
    """Mean latency in µs (the latencies of one thread add up to its time)."""
    return quotient(sum(timing.latencies), timing.count) * 1e6


def ping_us(app: Flask, count: int = 2000) -> float:
    """µs of one PING round trip to the benchmark Redis, for scale."""
    client = services_of(app).redis
    client.ping()
    start = time.perf_counter()
    for _ in range(count):
        client.ping()
    return (time.perf_counter() - start) / count * 1e6


def run(app: Flask, options: StageOptions | None = None) -> StageCosts:
    """Measure the stages and print them."""
    options = options or StageOptions()
    print(heading("7. Cost of each stage of a cache-hit open (in-process, one thread)"))
    costs = measure(app, options)
    ping = ping_us(app)
    order = list(dict.fromkeys(s.name for s in stages_of(app.extensions[CORE])))
    rows = [
        [name, f"{costs.calls.get(name, 0):.1f}", *_us(costs.stages.get(name))] for name in order
    ]
    rows.append([REST, "", *_us(costs.rest)])
    rows.append(["whole open, timed, timers' cost taken off", "", *_us(costs.whole)])
    untimed = f"{costs.untimed:,.1f}"
    rows.append(["whole open, untimed (mean latency, for comparison)", "", untimed, ""])
    inside, outside = costs.timer.inside.times(1e6), costs.timer.outside.times(1e6)
    print(
        paragraph(
            "method: the real functions timed in place (timers installed on the app's objects "
            "for the measurement only), wall time and this thread's CPU time (time.thread_time) "
            f"of each; the timers' own cost ({inside.wall:.2f} + {outside.wall:.2f} µs wall, "
            f"{inside.cpu:.2f} + {outside.cpu:.2f} µs CPU per timed call) is taken off. The "
            "WSGI entry row is the whole timed open minus the stages. "
            f"{options.rounds} interleaved rounds of {options.seconds:g} s, timed and untimed, "
            "one request at a time, through the app's WSGI callable (no HTTP server). Wall time "
            "beyond CPU time is waiting: for Redis, and for the GIL, which the socket calls "
            "release and the background writer (recording earlier opens) takes meanwhile."
        )
    )
    print(table(["stage", "calls/req", "wall µs/req", "CPU µs/req"], rows))
    print(
        paragraph(
            f"for scale: a PING round trip to this Redis takes {ping:,.0f} µs; the bare Flask "
            f"app's constant PNG takes {costs.bare.wall:,.0f} µs in-process "
            f"({costs.bare.cpu:,.0f} µs of CPU). Over the untimed opens "
            f"the process used {costs.process_cpu:,.0f} µs of CPU per open (the background "
            f"writer included) and Redis {costs.redis_cpu:,.0f} µs."
        )
    )
    return costs


def _us(cost: Cost | None) -> list[str]:
    if cost is None:
        return ["n/a", "n/a"]
    return [f"{cost.wall:,.1f}", f"{cost.cpu:,.1f}"]
