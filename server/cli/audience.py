"""``blanco audience CAMPAIGN [--date DAY] [--format csv|jsonl] [--output FILE]``: record the
day's send of a newsletter and write its audience (as ``POST /api/v1/campaigns/{c}/sends``)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import IO, Any

from models.errors import BlancoError
from models.newsletter.audience_export import ExportFormat, columns, encode_rows
from models.newsletter.newsletters import Newsletter
from models.newsletter.sends import Send, plan_send
from server.cli.context import command_services
from server.services import Services, audience_export


def iso_date(text: str) -> dt.date:
    """A calendar date like 2026-11-23 (an argparse type)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from None


def plan(services: Services, campaign_id: str, day: dt.date | None) -> tuple[Newsletter, Send]:
    """The newsletter and the send to export; BlancoError if there is none that day."""
    newsletter = services.newsletters.require(campaign_id)
    return newsletter, plan_send(newsletter, day, services.clock())


def run_audience(
    services: Services,
    campaign_id: str,
    day: dt.date | None,
    fmt: ExportFormat,
    out: IO[str] | Path,
    stderr: IO[str] | None = None,
) -> int:
    """Export the audience to ``out`` (a stream, or a file written only once the send is
    known to be valid); a summary (or the problem) goes to ``stderr``."""
    err = stderr or sys.stderr
    export = audience_export(services)
    try:
        newsletter, send = plan(services, campaign_id, day)
        export.start(send)
    except BlancoError as exc:
        print(f"blanco audience: {exc.public_message}", file=err)
        for problem in getattr(exc, "errors", []):
            print(f"  {problem.field}: {problem.message}", file=err)
        return 1
    rows = export.rows(newsletter, send, send.started_at)
    chunks = encode_rows(rows, columns(newsletter), fmt)
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as stream:
            stream.writelines(chunks)
    else:
        out.writelines(chunks)
        out.flush()
    counts = services.sends.require(campaign_id, send.id).counts
    print(
        f"send {campaign_id}/{send.id}: {counts.audience:,} recipients exported, "
        f"{counts.holdout:,} held out, {counts.suppressed:,} suppressed, "
        f"{counts.no_consent:,} without consent, {counts.not_selected:,} not selected "
        f"(of {counts.considered:,} profiles)",
        file=err,
    )
    return 0


def cmd_audience(args: argparse.Namespace) -> int:
    """Handler of ``blanco audience``."""
    out = sys.stdout if args.output in (None, "-") else Path(args.output)
    with command_services() as services:
        return run_audience(services, args.campaign, args.date, args.format, out)


def add_audience_command(subparsers: Any) -> None:
    """Register ``audience`` on the ``blanco`` command's subparsers."""
    parser = subparsers.add_parser(
        "audience", help="record today's newsletter send and export its audience"
    )
    parser.add_argument("campaign", help="the campaign whose newsletter goes out")
    parser.add_argument("--date", type=iso_date, help="the send's local date (default: today)")
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--output", help="file to write (default: standard output)")
    parser.set_defaults(handler=cmd_audience)
