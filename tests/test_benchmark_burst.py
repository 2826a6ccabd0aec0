"""Smoke test of ``python -m benchmarks.burst`` at 200 recipients: it sets up, drives gunicorn
with wrk (every request once; wrk installed when missing), and reports the sizing with no
fallback and no 5xx. Nothing is timed: the figures of so small a run mean nothing."""

from __future__ import annotations

import random
import re

import pytest

from benchmarks import burst
from benchmarks.burst_mix import CLIENT_MIX, pick_clients, schedule, skewed_names

pytestmark = pytest.mark.own_redis


def test_the_schedule_sends_every_image_of_every_email_in_time_order() -> None:
    rng = random.Random(1)
    urls = [[f"/e{n}/{i}.png" for i in range(4)] for n in range(300)]
    clients = pick_clients(len(urls), rng)

    requests = schedule(urls, clients, 900.0, rng)

    assert [r.at for r in requests] == sorted(r.at for r in requests)
    assert {r.path for r in requests} == {p for paths in urls for p in paths}
    refetched = sum(c.refetch_share > 0 for c in clients)
    assert 4 * len(urls) <= len(requests) <= 4 * (len(urls) + refetched)
    assert abs(sum(CLIENT_MIX[i].share for i in range(len(CLIENT_MIX))) - 1) < 1e-9
    names = skewed_names(5000, rng)
    top = max(names.count(n) for n in set(names))
    assert 500 < len(set(names)) <= 1400
    assert top < 0.06 * len(names)  # skewed, but no name is half the list


def test_the_burst_reports_sizing_with_no_fallback_and_no_5xx(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)  # its own TCP redis-server

    assert (
        burst.main(
            [
                *("--recipients", "200", "--connections", "4,8"),
                *("--warmup", "0.05", "--max-seconds", "60"),
            ]
        )
        == 0
    )

    out = capsys.readouterr().out
    assert "answers 200, no fallback; the server counted none" in out
    assert "PROBLEMS" not in out
    answered = re.search(r"checks: all ([\d,]+) answers", out)
    sent = re.search(r"([\d,]+) image\s+requests", out)
    assert answered
    assert sent
    assert int(answered[1].replace(",", "")) == int(sent[1].replace(",", "")) >= 800
    for emails in ("1,000,000", "10,000,000"):
        assert re.search(rf"sizing: {emails} emails: burst [\d,]+ req/s; .*Redis memory", out)
    assert "per recipient:" in out
    assert "renders (first draws) vs cache hits" in out
    assert "load average" in out
    marks = re.search(
        r"exact arm figures: [\d.,]+ MB for ([\d,]+) marks .*: ([\d,]+) B each; "
        r"the send.s [\d.,]+ MB are kept 7 days",
        out,
    )
    assert marks
    assert int(marks[1].replace(",", "")) >= 2 * 200  # every recipient reached, in two scopes
    assert int(marks[2].replace(",", "")) > 0
