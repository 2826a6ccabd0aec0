"""Smoke test of the benchmark's wrk section (``python -m benchmarks --http-only``): one round of
one second per side. It checks that the report is complete, never what it measures. Also the
parts it relies on: wrk's report parsed, wrk installed when missing, a bare app with no Blanco
code, and the recording switch of the recording-cost section."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from benchmarks import bare_app, first_open, http_compare, slot_route, wrk
from benchmarks.__main__ import main
from benchmarks.http_app import (
    RECORD_PARAM,
    RecordingSwitch,
    install_recording_switch,
    remove_recording_switch,
)
from benchmarks.open_route import CACHE_HIT_RECIPIENT
from models.measurement.event_stream import campaign_event_count
from server.demo.data import BLOCK_ID, CAMPAIGN_ID, load_demo
from server.open.routes import CORE
from server.services import Services
from server.urls import image_url

ROOT = Path(__file__).resolve().parent.parent

REPORT = """Running 1s test @ http://127.0.0.1:1/constant.png
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  520.00us  12.00ms   90.00%
    Req/Sec     3.50k   200.00     4.00k    70.00%
  Latency Distribution
     50%  987.00us
     75%    1.20ms
     90%    1.50ms
     99%    3.25ms
  7000 requests in 1.00s, 146.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   6990.50
Transfer/sec:    145.80MB
"""


def test_wrk_report_is_parsed() -> None:
    result = wrk.parse_report(REPORT)

    assert result.requests == 7000
    assert result.seconds == pytest.approx(1.0)
    assert result.rate == pytest.approx(6990.5)
    assert result.p50 == pytest.approx(987e-6)
    assert result.p99 == pytest.approx(3.25e-3)
    assert result.non_2xx == 3
    assert result.socket_errors == 3


def test_missing_wrk_is_installed_with_apt_get_then_reported() -> None:
    commands: list[list[str]] = []

    def failing(command: Sequence[str]) -> bool:
        commands.append(list(command))
        return False

    found = wrk.find_wrk(
        which=lambda name: "/usr/bin/apt-get" if name == "apt-get" else None, run=failing
    )

    assert found.path is None
    assert "did not install" in found.note
    assert [c[:2] for c in commands] == [
        ["apt-get", "install"],
        ["apt-get", "update"],
        ["apt-get", "install"],
    ]


def test_the_bare_app_imports_no_blanco_code() -> None:
    code = (
        "import sys, benchmarks.bare_app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('server', 'models', 'renderers', 'wsgi')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "[]"
    assert 20 * 1024 <= len(bare_app.constant_png()) <= 22 * 1024
    # the baseline keeps gunicorn's default, one listening socket shared by its workers
    assert "--reuse-port" not in http_compare.GUNICORN_SHAPE


def test_the_wrk_section_reports_ratios_and_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert shutil.which("wrk"), "no wrk: install Debian's wrk (make test does: make wrk)"
    assert main(["--http-only", "--http-rounds", "1", "--http-seconds", "1"]) == 0

    out = capsys.readouterr().out
    assert "wrk missing" not in out
    for side in ("1  bare", "1  blanco", "1  slot", "1  constant"):
        assert re.search(rf"^\s+{side}\s+[\d,]+\s+[\d,]+", out, re.MULTILINE), side
    flatters = r"Blanco's\s+constant\s+route\s+—\s+shares\s+Blanco's\s+overhead,\s+flatters"
    assert re.search(flatters, out)
    assert "every side answered 200 image/png" in out
    assert "0 fallbacks and 0 events lost" in out
    assert "PROBLEM" not in out
    verdicts = re.findall(
        r"^\s+(PASS|MISS)\s+HTTP Blanco open \(cache hit\) (req/s|p99) vs bare Flask", out, re.M
    )
    assert {kind for _, kind in verdicts} == {"req/s", "p99"}
    assert re.search(
        r"^\s+(PASS|MISS)\s+HTTP newsletter slot re-open req/s vs bare Flask", out, re.M
    )
    assert re.search(r"req/s vs bare.*\n(.*\n)*\s+blanco\s.*\d\.\d\d× \(", out)
    assert re.search(r"^\s+blanco\s.*\(\+\d+ Redis\)$", out, re.MULTILINE)
    assert "load average at end:" in out


def test_the_recording_switch_serves_opens_without_recording(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    load_demo(services)
    url = image_url("", CAMPAIGN_ID, BLOCK_ID, services.signer.sign(CACHE_HIT_RECIPIENT))
    original = install_recording_switch(app)
    before = campaign_event_count(services.redis, CAMPAIGN_ID)

    skipped = client.get(f"{url}&{RECORD_PARAM}=0")
    after_skipped = campaign_event_count(services.redis, CAMPAIGN_ID)
    recorded = client.get(url)
    after_recorded = campaign_event_count(services.redis, CAMPAIGN_ID)
    remove_recording_switch(app, original)

    assert skipped.status_code == recorded.status_code == 200
    assert "X-Blanco-Fallback" not in skipped.headers
    assert (after_skipped, after_recorded) == (before, before + 1)
    assert not isinstance(app.wsgi_app, RecordingSwitch)
    assert app.extensions[CORE] is original


def test_the_slot_section_compares_first_opens_with_cold_block_opens(
    app: Flask, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    load_demo(services)
    targets = slot_route.run(app, slot_route.SlotRouteOptions(rounds=2, per_round=5, warmup=2))

    out = capsys.readouterr().out
    assert re.search(r"^\s+block, cold open\s+10\s", out, re.M)
    assert re.search(r"^\s+slot, first open\s+10\s.*\d\.\d\d×$", out, re.M)
    assert "all 200 image/png, no fallback; rankings stored for 12 slot recipients" in out
    assert [t.label for t in targets] == ["in-process slot first open vs block cold open, median"]


def test_the_first_open_section_compares_first_opens_with_renders_alone(
    app: Flask, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    load_demo(services)
    targets = first_open.run(app, first_open.FirstOpenOptions(pairs=6, warmup=2))

    out = capsys.readouterr().out
    assert re.search(r"^\s+render and encode alone\s+6\s.*1\.00×$", out, re.M)
    assert re.search(r"^\s+first open \(renders\)\s+6\s.*\d\.\d\d×$", out, re.M)
    assert "all 200 image/png, no fallback; 8 distinct images for 8 opens" in out
    assert [t.label for t in targets] == [
        "in-process first open rate vs render-and-encode rate, median"
    ]
