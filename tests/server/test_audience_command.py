"""``blanco audience``: the day's send recorded and its audience written to a file or stdout,
a summary on stderr, exit status 1 (with the reason) for an unknown campaign or a skipped day."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import redis

from models.campaigns.specs import CampaignSpec
from models.storage import keys
from server.cli.audience import cmd_audience, run_audience
from server.cli.main import build_parser
from server.services import Services
from server.tokens import TokenSigner
from tests.conftest import SIGNING_KEY
from tests.factories import FakeClock, redis_contents
from tests.newsletter_fixtures import newsletter_spec, store_subscriber

MONDAY = "2026-11-23"
SUNDAY = "2026-11-22"
HEADER = "recipient_id,bl_token,bl_send,email,first_name"


def parser() -> argparse.ArgumentParser:
    """The real ``blanco`` command line."""
    return build_parser()


def run(services: Services, *args: str) -> tuple[int, str, str]:
    """Parse ``blanco audience ARGS`` and run it on ``services``: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    parsed = parser().parse_args(["audience", *args])
    status = run_audience(services, parsed.campaign, parsed.date, parsed.format, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def newsletter(services: Services) -> str:
    """The ``daily`` campaign with a workday newsletter: anna and bram get it, chloe has no
    consent, daan is suppressed and eva is not selected (travel < 0.5)."""
    services.campaigns.create_campaign(CampaignSpec(id="daily"))
    services.newsletters.put(
        "daily",
        newsletter_spec(
            schedule={"weekdays": ["mon", "tue", "wed", "thu", "fri"]},
            audience={"score": "travel", "gte": 0.5},
        ),
    )
    store_subscriber(services, "anna", scores={"travel": 0.9})
    store_subscriber(services, "bram", scores={"travel": 0.6}, first_name="Bram, jr.")
    store_subscriber(services, "chloe", consent=False, scores={"travel": 0.9})
    store_subscriber(services, "daan", scores={"travel": 0.9})
    store_subscriber(services, "eva", scores={"travel": 0.1})
    services.newsletters.suppress("daily", ["daan"])
    return "daily"


SUMMARY = (
    f"send daily/{MONDAY}: 2 recipients exported, 0 held out, 1 suppressed, "
    "1 without consent, 1 not selected (of 5 profiles)\n"
)


def test_csv_audience_with_a_summary_on_stderr(services: Services, newsletter: str) -> None:
    status, out, err = run(services, "daily", "--date", MONDAY, "--format", "csv")
    assert status == 0
    assert err == SUMMARY
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == HEADER
    by_id = {row["recipient_id"]: row for row in rows}
    assert sorted(by_id) == ["anna", "bram"]
    for rid, row in by_id.items():
        assert services.signer.verify(row["bl_token"]) == rid
        assert row["bl_send"] == MONDAY
        assert row["email"] == f"{rid}@mail.example"
    assert by_id["bram"]["first_name"] == "Bram, jr."
    send = services.sends.require("daily", MONDAY)
    assert (send.status, send.counts.audience, send.counts.considered) == ("exported", 2, 5)
    assert services.sends.was_sent_to("daily", MONDAY, "anna")


def test_jsonl_audience(services: Services, newsletter: str) -> None:
    status, out, err = run(services, "daily", "--date", MONDAY, "--format", "jsonl")
    assert (status, err) == (0, SUMMARY)
    rows = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["recipient_id"])
    assert [list(row) for row in rows] == [
        ["recipient_id", "bl_token", "bl_send", "email", "first_name"]
    ] * 2
    assert [(r["recipient_id"], r["first_name"]) for r in rows] == [
        ("anna", "Anna"),
        ("bram", "Bram, jr."),
    ]
    assert all(services.signer.verify(r["bl_token"]) == r["recipient_id"] for r in rows)


def test_the_default_date_is_today_in_the_schedule_time_zone(
    services: Services, clock: FakeClock, newsletter: str
) -> None:
    clock.now = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)  # Tuesday 00:30 in Amsterdam
    status, out, err = run(services, "daily")
    assert status == 0
    assert err.startswith("send daily/2026-11-24: 2 recipients exported")
    assert {row["bl_send"] for row in csv.DictReader(io.StringIO(out))} == {"2026-11-24"}
    assert services.sends.get("daily", MONDAY) is None


def test_an_unknown_campaign_exits_1_and_records_nothing(
    services: Services, redis_client: redis.Redis, newsletter: str
) -> None:
    state = redis_contents(redis_client)
    status, out, err = run(services, "nope", "--date", MONDAY)
    assert (status, out) == (1, "")
    assert err == "blanco audience: campaign 'nope' has no newsletter\n"
    assert redis_contents(redis_client) == state


def test_a_skipped_day_exits_1_and_records_nothing(
    services: Services, redis_client: redis.Redis, clock: FakeClock, newsletter: str
) -> None:
    state = redis_contents(redis_client)
    status, out, err = run(services, "daily", "--date", SUNDAY, "--format", "jsonl")
    assert (status, out) == (1, "")
    assert err == (
        "blanco audience: the newsletter does not go out on that day\n"
        f"  date: {SUNDAY} is not one of mon, tue, wed, thu, fri\n"
    )
    clock.now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # a Saturday
    status, out, err = run(services, "daily")
    assert (status, out) == (1, "")
    assert "  date: 2026-11-28 is not one of mon, tue, wed, thu, fri" in err
    assert redis_contents(redis_client) == state


def test_running_a_day_again_replaces_its_send(services: Services, newsletter: str) -> None:
    status, out, err = run(services, "daily", "--date", MONDAY)
    again = run(services, "daily", "--date", MONDAY)
    # the same rows (in whatever order SCAN returns them) and the same counts, not doubled
    assert (again[0], sorted(again[1].splitlines()), again[2]) == (
        0,
        sorted(out.splitlines()),
        SUMMARY,
    )
    assert (status, err) == (0, SUMMARY)
    services.newsletters.unsuppress("daily", "daan")
    status, out, err = run(services, "daily", "--date", MONDAY)
    assert status == 0
    assert err.startswith(f"send daily/{MONDAY}: 3 recipients exported, 0 held out, 0 suppressed")
    assert len(out.splitlines()) == 4
    assert [s.id for s in services.sends.recent("daily")] == [MONDAY]


def test_the_parser_knows_the_options() -> None:
    parsed = parser().parse_args(["audience", "daily"])
    assert (parsed.campaign, parsed.date, parsed.format, parsed.output, parsed.handler) == (
        "daily",
        None,
        "csv",
        None,
        cmd_audience,
    )
    parsed = parser().parse_args(
        ["audience", "daily", "--date", MONDAY, "--format", "jsonl", "--output", "out.jsonl"]
    )
    assert (parsed.date, parsed.format, parsed.output) == (
        dt.date(2026, 11, 23),
        "jsonl",
        "out.jsonl",
    )
    for bad in (
        ["audience"],
        ["audience", "daily", "--date", "tomorrow"],
        ["audience", "daily", "--date", "2026-13-01"],
        ["audience", "daily", "--format", "xlsx"],
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(bad)


@pytest.fixture
def configured(redis_url: str, monkeypatch: pytest.MonkeyPatch, services: Services) -> None:
    """The environment a ``blanco`` command reads its settings from, on the test Redis, with
    a workday newsletter for everyone who consents: anna and bram, not chloe. (The command
    runs on the real clock, so the audience rule does not use scores.)"""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    services.campaigns.create_campaign(CampaignSpec(id="daily"))
    services.newsletters.put(
        "daily", newsletter_spec(schedule={"weekdays": ["mon", "tue", "wed", "thu", "fri"]})
    )
    store_subscriber(services, "anna")
    store_subscriber(services, "bram")
    store_subscriber(services, "chloe", consent=False)


HANDLER_SUMMARY = (
    f"send daily/{MONDAY}: 2 recipients exported, 0 held out, 0 suppressed, "
    "1 without consent, 0 not selected (of 3 profiles)\n"
)


def test_the_handler_writes_the_file_on_the_configured_redis(
    configured: None,
    redis_client: redis.Redis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "audience.csv"
    args = parser().parse_args(
        ["audience", "daily", "--date", MONDAY, "--format", "csv", "--output", str(path)]
    )
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == HANDLER_SUMMARY
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert sorted(row["recipient_id"] for row in rows) == ["anna", "bram"]
    signer = TokenSigner([SIGNING_KEY])
    assert all(signer.verify(row["bl_token"]) == row["recipient_id"] for row in rows)
    assert redis_client.smembers(keys.send_members("daily", MONDAY)) == {"anna", "bram"}


def test_the_handler_writes_to_stdout_by_default(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for output in ([], ["--output", "-"]):
        args = parser().parse_args(["audience", "daily", "--date", MONDAY, *output])
        assert args.handler(args) == 0
        captured = capsys.readouterr()
        assert captured.out.splitlines()[0] == HEADER
        assert len(captured.out.splitlines()) == 3
        assert captured.err == HANDLER_SUMMARY


@pytest.mark.parametrize("args", [["nope", "--date", MONDAY], ["daily", "--date", SUNDAY]])
def test_a_failed_run_leaves_the_output_file_alone(
    configured: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    """A mistyped campaign or date must not wipe yesterday's export."""
    path = tmp_path / "audience.csv"
    path.write_text("the previous export\n")
    parsed = parser().parse_args(["audience", *args, "--output", str(path)])
    assert parsed.handler(parsed) == 1
    assert capsys.readouterr().err.startswith("blanco audience: ")
    assert path.read_text() == "the previous export\n"
