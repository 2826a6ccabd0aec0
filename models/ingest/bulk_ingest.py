"""Bulk ingest of JSON Lines and CSV: validate each line, store the good ones in pipelined
chunks, and report every bad line by number with the reason and field path (or column).

A store may refuse some rows of a chunk after storing the others (``RowsRefused``: rows of
erased recipients, say, reported at ``/recipient_id``); those lines are reported where and why
the store says."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from models.errors import RowsRefused, field_errors
from models.ingest.csv_rows import Column, CsvKind, RowProblem, read_csv
from models.ingest.json_input import nesting_problem

M = TypeVar("M", bound=BaseModel)
CHUNK = 2000
MAX_REPORTED_ERRORS = 1000
"""Rejected lines reported one by one; every line still counts under its error's kind."""
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class LineError:
    """Why one line was rejected."""

    line: int
    pointer: str
    detail: str


@dataclass
class ErrorKind:
    """One kind of error (a field and what was wrong with it, numbers aside) over every
    rejected line: how many lines had it, and the first of them."""

    pointer: str
    detail: str
    """The first line's wording."""
    count: int
    first_line: int


@dataclass
class BulkReport:
    """Outcome of a bulk call: counts, every kind of error with its count, and the first
    ``MAX_REPORTED_ERRORS`` rejected lines."""

    received: int = 0
    stored: int = 0
    rejected: int = 0
    errors: list[LineError] = field(default_factory=list)
    kinds: dict[tuple[str, str], ErrorKind] = field(default_factory=dict)

    def reject(self, error: LineError) -> None:
        """Count a bad line under its kind, keeping its details while the list is short
        enough."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)
        key = (error.pointer, _DIGITS.sub("#", error.detail))
        kind = self.kinds.get(key)
        if kind is None:
            self.kinds[key] = ErrorKind(error.pointer, error.detail, 1, error.line)
        else:
            kind.count += 1
            kind.first_line = min(kind.first_line, error.line)

    def as_dict(self) -> dict[str, Any]:
        """The report as the API returns it."""
        kinds = sorted(self.kinds.values(), key=lambda k: (-k.count, k.first_line))
        return {
            "received": self.received,
            "stored": self.stored,
            "rejected": self.rejected,
            "error_kinds": [kind.__dict__ for kind in kinds],
            "errors": [e.__dict__ for e in self.errors],
        }


def _pointer(loc: Sequence[int | str]) -> str:
    return "/" + "/".join(str(p) for p in loc) if loc else ""


class _Chunks(Generic[M]):
    """Good rows with their line numbers, handed to ``store`` ``size`` at a time; rows the
    store refuses (erased recipients) are reported by their lines."""

    def __init__(self, store: Callable[[list[M]], int], report: BulkReport, size: int) -> None:
        self.store = store
        self.report = report
        self.size = size
        self.rows: list[M] = []
        self.lines: list[int] = []

    def add(self, row: M, line: int) -> None:
        """Keep a good row; store the chunk once it is full."""
        self.rows.append(row)
        self.lines.append(line)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        """Store what is kept."""
        if not self.rows:
            return
        report = self.report
        try:
            report.stored += self.store(self.rows)
        except RowsRefused as refused:
            report.stored += refused.stored
            for refusal in refused.refusals:
                report.reject(
                    LineError(self.lines[refusal.index], refusal.pointer, refusal.message)
                )
        self.rows, self.lines = [], []


def ingest_jsonl(
    lines: Iterable[bytes | str],
    model: type[M],
    store: Callable[[list[M]], int],
    chunk: int = CHUNK,
) -> BulkReport:
    """Validate ``lines`` into ``model`` and hand good ones to ``store`` in chunks."""
    report = BulkReport()
    chunks = _Chunks(store, report, chunk)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        report.received += 1
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            report.reject(LineError(number, "", f"not valid UTF-8 (byte {exc.start + 1})"))
            continue
        too_deep = nesting_problem(text)
        if too_deep is not None:
            report.reject(LineError(number, too_deep.pointer, too_deep.message))
            continue
        try:
            row = model.model_validate_json(text)
        except ValidationError as exc:
            try:
                data = json.loads(text)
            except ValueError:
                report.reject(LineError(number, "", "not valid JSON"))
                continue
            for error in field_errors(exc, data)[:1]:
                report.reject(LineError(number, error.pointer, error.message))
            continue
        chunks.add(row, number)
    chunks.flush()
    report.errors.sort(key=lambda error: error.line)
    return report


def ingest_csv(
    lines: Iterable[bytes],
    kind: CsvKind[M],
    store: Callable[[list[M]], int],
    chunk: int = CHUNK,
) -> BulkReport:
    """Validate CSV rows (UTF-8, an optional byte order mark, header first) into
    ``kind.model`` and hand good ones to ``store`` in chunks; a bad row's pointer names its
    column (``/amount``), and a row on a line that is not UTF-8 is refused."""
    report = BulkReport()
    header: list[Column] = []
    chunks = _Chunks(store, report, chunk)
    undecodable: set[int] = set()
    for item in read_csv(_decoded(lines, undecodable), kind, undecodable):
        if isinstance(item, list):
            header = item
            continue
        if isinstance(item, RowProblem):
            error = LineError(item.line, _column_pointer(item.column), item.detail)
            if item.line > 1:
                report.received += 1
                report.reject(error)
            else:  # the header: one rejected line, every problem reported
                report.rejected = 1
                report.errors.append(error)
            continue
        report.received += 1
        try:
            row = kind.model.model_validate(item.document)
        except ValidationError as exc:
            first = field_errors(exc, item.document)[0]
            column = kind.column_of(first.path, header)
            report.reject(LineError(item.line, _column_pointer(column), first.message))
            continue
        chunks.add(row, item.line)
    chunks.flush()
    report.errors.sort(key=lambda error: error.line)
    return report


def _decoded(lines: Iterable[bytes], undecodable: set[int]) -> Iterator[str]:
    """Each line as text; the number of a line that is not UTF-8 goes into ``undecodable``
    (and the line is passed on with replacement characters, for the CSV reader to skip)."""
    for number, raw in enumerate(lines, start=1):
        line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            undecodable.add(number)
            yield line.decode("utf-8", errors="replace")


def _column_pointer(column: str) -> str:
    return "/" + column.replace("~", "~0").replace("/", "~1") if column else ""
