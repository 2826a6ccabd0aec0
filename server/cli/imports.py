"""``blanco import {profiles,scores,transactions,events} FILE [--format jsonl|csv]``.

Streams a JSON Lines or CSV file into the stores in pipelined chunks, the same way the bulk API
does, with a progress bar on stderr. At the end it prints the bad rows on stderr and the report
(as the API answers it) on stdout, and exits 1 if any row was bad.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from models.ingest.bulk_ingest import BulkReport, ingest_csv, ingest_jsonl
from models.ingest.csv_rows import KINDS
from server.cli.context import command_services
from server.services import Services

FORMATS = ("jsonl", "csv")
SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
BAR_WIDTH = 30


def stores(services: Services) -> dict[str, Callable[[list[Any]], int]]:
    """Where each kind of row goes."""
    return {
        "profiles": services.recipients.upsert_profiles,
        "scores": services.recipients.upsert_scores,
        "transactions": lambda rows: services.conversions.record(rows).stored,
        "events": services.customer_data.add_events,
    }


class Progress:
    """A one-line progress bar redrawn with ``\\r``: share of bytes read, lines, lines/s."""

    def __init__(
        self,
        stream: IO[str],
        label: str,
        total_bytes: int | None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total_bytes
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.drawn_at = self.started
        self.bytes = 0
        self.lines = 0
        self._width = 0

    def track(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """Pass ``lines`` through, counting them and redrawing now and then."""
        for line in lines:
            self.bytes += len(line)
            self.lines += 1
            if self.clock() - self.drawn_at >= self.interval:
                self.draw()
            yield line

    def text(self) -> str:
        """The current line."""
        elapsed = max(self.clock() - self.started, 1e-9)
        counts = f"{self.lines:,} lines  {self.lines / elapsed:,.0f} lines/s"
        if not self.total:
            return f"{self.label}: {counts}"
        share = min(1.0, self.bytes / self.total)
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {share:6.1%}  {counts}"

    def draw(self) -> None:
        """Redraw the line in place."""
        text = self.text()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        self.drawn_at = self.clock()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self.draw()
        self.stream.write("\n")
        self.stream.flush()


def file_format(path: str, given: str | None) -> str | None:
    """The format named, else the one the file name suggests; None when neither says."""
    return given or SUFFIX_FORMATS.get(Path(path).suffix.lower())


def run_import(
    services: Services,
    kind_name: str,
    path: str,
    file_format_name: str | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Import one file; 0 if every row was stored, 1 if some were bad, 2 if none was read."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    kind = KINDS[kind_name]
    chosen = file_format(path, file_format_name)
    if chosen is None:
        print(f"blanco import: say --format jsonl or --format csv for {path}", file=err)
        return 2
    try:
        source: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"blanco import: cannot read {path}: {exc.strerror}", file=err)
        return 2
    total = None if path == "-" else os.fstat(source.fileno()).st_size
    progress = Progress(err, f"{kind_name} ({chosen})", total)
    store = stores(services)[kind_name]
    with source:
        lines = progress.track(source)
        if chosen == "csv":
            report = ingest_csv(lines, kind, store)
        else:
            report = ingest_jsonl(lines, kind.model, store)
    progress.finish()
    print_report(report, err)
    print(json.dumps(report.as_dict()), file=out)
    return 1 if report.rejected else 0


def print_report(report: BulkReport, stream: IO[str]) -> None:
    """The counts and every reported bad row, one per line."""
    print(
        f"stored {report.stored:,} of {report.received:,} rows; {report.rejected:,} rejected",
        file=stream,
    )
    for error in report.errors:
        where = f"line {error.line}" + (f" {error.pointer}" if error.pointer else "")
        print(f"  {where}: {error.detail}", file=stream)
    hidden = report.rejected - len(report.errors)
    if hidden > 0:
        print(f"  … and {hidden:,} more bad rows; by kind:", file=stream)
        for kind in sorted(report.kinds.values(), key=lambda k: (-k.count, k.first_line)):
            where = f" {kind.pointer}" if kind.pointer else ""
            print(
                f"  {kind.count:,} ×{where}: {kind.detail} (first: line {kind.first_line})",
                file=stream,
            )


def cmd_import(args: argparse.Namespace) -> int:
    """Handler of ``blanco import``."""
    with command_services() as services:
        return run_import(services, args.kind, args.file, args.format)


def add_import_command(subparsers: Any) -> None:
    """Register ``import`` on the ``blanco`` command's subparsers."""
    parser = subparsers.add_parser(
        "import",
        help="bulk-load profiles, scores, transactions or events from a JSON Lines or CSV file",
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="what the file holds")
    parser.add_argument("file", help="the file to load; - reads standard input")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="jsonl or csv (default: from the file name: .csv is CSV, .jsonl/.ndjson JSON Lines)",
    )
    parser.set_defaults(handler=cmd_import)
