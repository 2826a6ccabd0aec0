"""The tally in front of prometheus_client: exact across threads, and bulk observations land
where one-by-one observations would."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from server.metrics import REQUEST_BUCKETS
from server.metrics_tally import Tally, observe_all

THREADS = 8
COUNTS_PER_THREAD = 20_000


def test_counts_from_many_threads_arrive_exactly_over_several_flushes() -> None:
    registry = CollectorRegistry()
    opens = Counter("opens", "Opens.", ["block"], registry=registry)
    hero, slot = opens.labels("hero"), opens.labels("slot")
    tally = Tally()
    start = threading.Barrier(THREADS + 1)

    def count() -> None:
        start.wait()
        for n in range(COUNTS_PER_THREAD):
            tally.count(hero if n % 4 else slot)

    threads = [threading.Thread(target=count) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    while any(thread.is_alive() for thread in threads):
        tally.flush()  # flushes while the threads count: nothing lost, nothing twice
    tally.flush()
    tally.flush()

    total = THREADS * COUNTS_PER_THREAD
    assert slot._value.get() == total // 4
    assert hero._value.get() == total - total // 4


def test_bulk_observations_land_in_the_buckets_observe_would_use() -> None:
    values = [0.0, 0.0004, 0.001, 0.0010001, 0.003, 0.05, 0.7, 2.5, 9.0, 10.0, 11.0, 1e9]
    one_by_one, in_bulk = CollectorRegistry(), CollectorRegistry()
    for registry in (one_by_one, in_bulk):
        Histogram("took", "Time.", ["route"], buckets=REQUEST_BUCKETS, registry=registry)
    single = one_by_one._names_to_collectors["took"]
    bulk = in_bulk._names_to_collectors["took"]
    for seconds in values:
        single.labels("open").observe(seconds)  # type: ignore[attr-defined]
    observe_all(bulk.labels("open"), values)  # type: ignore[attr-defined]

    assert samples(in_bulk) == samples(one_by_one)


def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    """Every sample but the creation time."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


def test_observations_without_the_library_layout_are_observed_one_by_one() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    plain = Plain()
    observe_all(plain, [0.1, 0.2])

    assert plain.seen == [0.1, 0.2]


def test_a_tally_flushes_observations_once() -> None:
    registry = CollectorRegistry()
    timing = Histogram("took", "Time.", buckets=REQUEST_BUCKETS, registry=registry)
    tally = Tally()
    for seconds in (0.002, 0.02):
        tally.observe(timing, seconds)
    tally.flush()
    tally.flush()

    assert registry.get_sample_value("took_count") == 2
    assert registry.get_sample_value("took_sum") == 0.022
    assert registry.get_sample_value("took_bucket", {"le": "0.0025"}) == 1
