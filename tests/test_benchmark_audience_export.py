"""Smoke test of ``python -m benchmarks.audience_export`` on 200 recipients: its child processes
run and the figures it reports agree with each other and with the recorded send. Nothing is
timed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks import audience_export as bench
from models.newsletter.audience_export import TOKEN_COLUMN, columns
from server.services import Services
from tests.factories import FakeClock


def test_the_benchmark_reports_consistent_figures(
    services: Services, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "audience.csv"

    stages = bench.measure(services, 200, clock(), output=str(output))

    assert [s.recipients for s in stages] == [20, 200]
    for stage in stages:
        counts = stage.send.counts
        assert bench.check(stage) == []
        assert stage.export.rows == counts.audience == stage.expected.audience
        assert counts == stage.expected
        assert stage.export.profiles == stage.raw.profiles == counts.considered == stage.recipients
        assert stage.export.samples[-1][0] == stage.export.rows
        assert 0 < stage.export.idle_kb <= stage.export.peak_kb
        assert 0 < stage.raw.idle_kb <= stage.raw.peak_kb
    last = stages[-1].send.counts
    assert min(last.audience, last.holdout, last.suppressed, last.no_consent) > 0
    assert last.not_selected > 0
    with output.open(encoding="utf-8", newline="") as written:
        header, *rows = list(csv.reader(written))
    newsletter = services.newsletters.require(bench.CAMPAIGN)
    assert header == columns(newsletter)
    assert len(rows) == stages[-1].export.rows
    token = rows[0][header.index(TOKEN_COLUMN)]
    assert services.signer.verify(token) == rows[0][0]
    assert services.sends.was_sent_to(bench.CAMPAIGN, stages[-1].send.id, rows[-1][0])

    targets = bench.report(stages)

    assert targets[-1].met
    assert "200-recipient audience export" in capsys.readouterr().out
