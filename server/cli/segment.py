"""``blanco segment [--at MOMENT]``: recompute every recipient's RFM, lifecycle and persona.

Prints a summary on stderr and the report (as ``POST /api/v1/segmentation/run`` answers it) on
stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import IO, Any

from server.cli.context import command_services
from server.services import Services


def aware_moment(text: str) -> dt.datetime:
    """An ISO 8601 moment with a UTC offset (an argparse type)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 moment") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. +01:00 or Z")
    return moment


def run_segment(
    services: Services,
    at: dt.datetime | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the segmentation job as of ``at`` (default: the services' clock)."""
    report = services.segmentation.run(at or services.clock())
    summary = report.as_dict()
    err = stderr or sys.stderr
    print(
        f"segmented {report.recipients:,} recipients ({report.customers:,} customers, "
        f"{report.changed:,} changed) in {report.duration_seconds:.2f} s",
        file=err,
    )
    for dimension in ("rfm", "lifecycle", "persona"):
        counts = ", ".join(f"{name} {count:,}" for name, count in summary[dimension].items())
        print(f"  {dimension}: {counts or '-'}", file=err)
    print(json.dumps(summary), file=stdout or sys.stdout)
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    """Handler of ``blanco segment``."""
    with command_services() as services:
        return run_segment(services, args.at)


def add_segment_command(subparsers: Any) -> None:
    """Register ``segment`` on the ``blanco`` command's subparsers."""
    parser = subparsers.add_parser(
        "segment", help="recompute RFM, lifecycle and persona segments of every recipient"
    )
    parser.add_argument(
        "--at",
        type=aware_moment,
        help="segment as of this moment (ISO 8601 with offset; default now)",
    )
    parser.set_defaults(handler=cmd_segment)
