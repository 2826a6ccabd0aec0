"""``blanco import`` and ``blanco segment``: files into the stores with a progress bar, the bad
rows reported, the exit status; the segmentation job from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from server.cli.imports import Progress, cmd_import, file_format, run_import
from server.cli.main import build_parser
from server.cli.segment import aware_moment, cmd_segment, run_segment
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.customer_fixtures import (
    EXPECTED_LIFECYCLE_COUNTS,
    EXPECTED_RFM_COUNTS,
    NOW,
    order_rows,
)
from tests.factories import redis_contents, store_block, store_recipient, variant
from tests.user_agents import BROWSER

TRANSACTIONS_CSV = (
    "recipient_id,order_id,at,amount,currency,category\n"
    "anna,o1,2026-11-20T12:00:00+01:00,49.95,EUR,city_trip\n"
    "anna,o2,2026-11-20T12:00:00+01:00,-1,EUR,\n"
    "bram,o3,2026-11-21T12:00:00Z,10,GBP,beach\n"
    "bram,o4,2026-11-21T12:00:00Z,10,ZZZ,beach\n"
)


def parser() -> argparse.ArgumentParser:
    """The real ``blanco`` command line, where both commands are registered."""
    return build_parser()


def run(services: Services, *args: str) -> tuple[int, str, str]:
    """Run ``blanco import ARGS`` on ``services``: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    parsed = parser().parse_args(["import", *args])
    status = run_import(services, parsed.kind, parsed.file, parsed.format, out, err)
    return status, out.getvalue(), err.getvalue()


def test_csv_import_stores_good_rows_and_reports_bad_ones(
    services: Services, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(TRANSACTIONS_CSV)
    status, out, err = run(services, "transactions", str(path))
    assert status == 1
    report = json.loads(out)
    assert (report["received"], report["stored"], report["rejected"]) == (4, 2, 2)
    assert [(e["line"], e["pointer"]) for e in report["errors"]] == [
        (3, "/amount"),
        (5, "/currency"),
    ]
    assert "stored 2 of 4 rows; 2 rejected" in err
    assert "  line 3 /amount: Input should be greater than or equal to 0" in err
    assert "  line 5 /currency: unknown ISO 4217 currency code 'ZZZ'" in err
    assert [t.order_id for t in services.customer_data.transactions("anna")] == ["o1"]
    assert [t.order_id for t in services.customer_data.transactions("bram")] == ["o3"]


def test_the_progress_bar_reaches_the_whole_file(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(TRANSACTIONS_CSV)
    _, _, err = run(services, "transactions", str(path))
    bar = err.split("\n")[0]
    assert bar.startswith("\rtransactions (csv) [")
    assert bar.rsplit("\r", 1)[1].startswith("transactions (csv) [" + "#" * 30 + "] 100.0%")
    assert "5 lines" in bar


def test_progress_redraws_in_place() -> None:
    ticks = iter(float(n) for n in range(100))
    stream = io.StringIO()
    progress = Progress(stream, "events", 40, interval=2.0, clock=lambda: next(ticks))
    lines = [b"0123456789"] * 4
    assert list(progress.track(lines)) == lines
    progress.finish()
    drawn = stream.getvalue()
    assert drawn.endswith("\n")
    frames = drawn.rstrip("\n").split("\r")[1:]
    # a redraw every 2 clock ticks: after the second line, after the fourth, and at the end
    assert len(frames) == 3
    assert frames[0].startswith("events [" + "#" * 15 + "." * 15 + "]  50.0%  2 lines  1 lines/s")
    assert frames[1].startswith("events [" + "#" * 30 + "] 100.0%  4 lines")
    assert frames[2].startswith("events [" + "#" * 30 + "] 100.0%  4 lines")


def test_re_importing_a_jsonl_file_changes_nothing(
    services: Services, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in order_rows()))
    status, out, err = run(services, "transactions", str(path))
    assert status == 0
    assert json.loads(out)["stored"] == len(order_rows())
    assert f"stored {len(order_rows())} of {len(order_rows())} rows; 0 rejected" in err
    state = redis_contents(redis_client)
    assert run(services, "transactions", str(path))[0] == 0
    assert redis_contents(redis_client) == state


def test_profiles_scores_and_events_by_kind(services: Services, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.csv"
    profiles.write_text("recipient_id,first_name,age\nanna,Anna,34\n")
    scores = tmp_path / "scores.txt"
    scores.write_text(
        '{"recipient_id": "anna", "computed_at": "2026-11-23T06:00:00Z", '
        '"scores": {"travel": 0.7}}\n'
    )
    events = tmp_path / "events.ndjson"
    events.write_text(
        '{"recipient_id": "anna", "type": "cs_contact", "at": "2026-11-22T10:00:00Z"}\n'
    )
    assert run(services, "profiles", str(profiles))[0] == 0
    assert run(services, "scores", str(scores), "--format", "jsonl")[0] == 0
    assert run(services, "events", str(events))[0] == 0
    profile = services.recipients.get_profile("anna")
    assert profile is not None
    assert profile["attributes"] == {"first_name": "Anna", "age": 34}
    assert services.recipients.get_scores("anna")["travel"].value == 0.7
    assert [e.type for e in services.customer_data.recent_events("anna")] == ["cs_contact"]


def test_unknown_format_and_missing_file_exit_2(services: Services, tmp_path: Path) -> None:
    status, out, err = run(services, "scores", str(tmp_path / "scores.txt"))
    assert (status, out) == (2, "")
    assert "--format jsonl or --format csv" in err
    status, out, err = run(services, "scores", str(tmp_path / "missing.csv"))
    assert (status, out) == (2, "")
    assert "cannot read" in err


def test_the_parser_knows_the_kinds_and_formats() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["import", "customers", "x.csv"])
    with pytest.raises(SystemExit):
        parser().parse_args(["import", "events", "x.csv", "--format", "xml"])
    parsed = parser().parse_args(["import", "events", "x.csv", "--format", "jsonl"])
    assert (parsed.kind, parsed.file, parsed.format, parsed.handler) == (
        "events",
        "x.csv",
        "jsonl",
        cmd_import,
    )


def test_import_handler_uses_the_configured_redis(
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    path = tmp_path / "orders.csv"
    path.write_text(TRANSACTIONS_CSV)
    args = parser().parse_args(["import", "transactions", str(path)])
    assert args.handler(args) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["stored"] == 2
    assert "2 rejected" in captured.err
    assert redis_client.hlen("blanco:rcp:{r:anna}:transactions") == 1


# blanco segment


def test_segment_runs_the_job_as_of_the_clock(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in order_rows()))
    run(services, "transactions", str(path))
    out, err = io.StringIO(), io.StringIO()
    assert run_segment(services, None, out, err) == 0
    summary = json.loads(out.getvalue())
    assert summary["ran_at"] == NOW.isoformat()
    assert summary["rfm"] == EXPECTED_RFM_COUNTS
    assert summary["lifecycle"] == {
        k: v for k, v in EXPECTED_LIFECYCLE_COUNTS.items() if k != "prospect"
    }
    assert err.getvalue().startswith("segmented 10 recipients (10 customers, 10 changed)")
    assert "  rfm: at_risk 1, champions 2" in err.getvalue()
    assert "  persona: -" in err.getvalue()


def test_segment_parses_its_moment() -> None:
    parsed = parser().parse_args(["segment", "--at", "2026-11-23T10:30:00+01:00"])
    assert parsed.at == NOW
    assert parsed.handler == cmd_segment
    assert parser().parse_args(["segment"]).at is None
    for bad in ("yesterday", "2026-11-23T10:30:00"):
        with pytest.raises(argparse.ArgumentTypeError):
            aware_moment(bad)


def test_segment_handler_uses_the_configured_redis(
    redis_url: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    redis_client.hset("blanco:rcp:{r:p01}:profile", "first_name", '"Piet"')
    args = parser().parse_args(["segment", "--at", NOW.isoformat()])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["lifecycle"] == {"prospect": 1}
    assert redis_client.smembers("blanco:rcp:{r:p01}:segments") == {"lifecycle:prospect"}


def test_a_dash_reads_stdin(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    body = "".join(
        json.dumps(
            {"recipient_id": rid, "computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 0.5}}
        )
        + "\n"
        for rid in ("anna", "bram")
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body.encode())))
    status, out, err = run(services, "scores", "-", "--format", "jsonl")
    assert status == 0
    assert json.loads(out)["stored"] == 2
    assert "stored 2 of 2 rows" in err
    assert set(services.recipients.get_scores("bram")) == {"m"}
    csv_body = "recipient_id,computed_at,m\ncarl,2026-11-23T06:00:00Z,0.25\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(csv_body.encode())))
    assert run(services, "scores", "-", "--format", "csv")[0] == 0
    assert set(services.recipients.get_scores("carl")) == {"m"}
    status, _, err = run(services, "scores", "-")  # no file name to tell the format by
    assert status == 2
    assert "--format jsonl or --format csv" in err


@pytest.mark.parametrize(
    ("name", "expected"),
    [("rows.csv", "csv"), ("ROWS.CSV", "csv"), ("rows.jsonl", "jsonl"), ("rows.ndjson", "jsonl")],
)
def test_the_format_defaults_from_the_file_name(name: str, expected: str) -> None:
    assert file_format(name, None) == expected
    assert file_format(name, "csv") == "csv"
    assert file_format("rows.txt", None) is None


def test_past_the_reported_lines_the_import_prints_every_kind_of_error(
    services: Services, tmp_path: Path
) -> None:
    header = "recipient_id,order_id,at,amount,currency\n"
    negative = "".join(f"anna,n{n},2026-11-20T12:00:00Z,-1,EUR\n" for n in range(1100))
    unknown = "".join(f"anna,u{n},2026-11-20T12:00:00Z,1,ZZZ\n" for n in range(3))
    path = tmp_path / "orders.csv"
    path.write_text(header + negative + unknown)
    status, out, err = run(services, "transactions", str(path))
    assert status == 1
    assert json.loads(out)["rejected"] == 1103
    assert "  … and 103 more bad rows; by kind:" in err
    assert "  1,100 × /amount: Input should be greater than or equal to 0 (first: line 2)" in err
    assert "  3 × /currency: unknown ISO 4217 currency code 'ZZZ' (first: line 1102)" in err


def test_imported_orders_are_credited_to_the_recipients_last_click(
    client: FlaskClient, services: Services, tmp_path: Path
) -> None:
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    client.get("/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER)
    at = (services.clock() + dt.timedelta(hours=1)).isoformat()
    path = tmp_path / "orders.csv"
    path.write_text(f"recipient_id,order_id,at,amount,currency\nanna,o9,{at},20,EUR\n")
    assert run(services, "transactions", str(path))[0] == 0
    credit = services.redis.hget(keys.attributions("anna"), "o9")
    assert credit is not None
    assert json.loads(credit)["basis"] == "click"
