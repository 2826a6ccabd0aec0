"""CSV rows as the documents the bulk models validate: profiles, scores, transactions, events.

The first row names the columns. Line numbers count physical lines of the file, the header
being line 1 (a quoted cell spanning lines takes its row's first line). Surrounding spaces are
trimmed and an empty cell is skipped (the value is left as it is). Columns per kind:

- profiles: ``recipient_id``, optional ``updated_at``, ``source`` and ``segments``
  (``;``-separated; replaces the set), and one column per attribute. An attribute cell reads
  ``true``/``false`` as a boolean and a plain integer or decimal (``34``, ``-2.5``; not ``007``
  or ``1e3``) as a number, else text; a ``:str`` suffix on the column name (``postcode:str``)
  keeps it text.
- scores: ``recipient_id``, optional ``model_version`` and ``computed_at`` (for every score on
  the row), and one column per model holding its value.
- transactions: ``recipient_id``, ``order_id``, ``at``, ``amount``, ``currency``, optional
  ``type`` (``order`` or ``refund``) and ``category``.
- events: ``recipient_id``, ``event_id``, ``type``, ``at``, ``channel``, and attribute columns
  as for profiles.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from models.newsletter.content_feed import ContentItem
from models.recipients.customer_data import CustomerEvent, Transaction
from models.recipients.upserts import ProfileUpsert, ScoresUpsert

M = TypeVar("M", bound=BaseModel)
TEXT_SUFFIX = ":str"
SEGMENT_SEPARATOR = ";"
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,17})$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,17})\.[0-9]{1,18}$")
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_:.-]{0,63}$")


@dataclass(frozen=True)
class Column:
    """One header cell: its title as written and the name it stands for."""

    title: str
    name: str
    text: bool = False


@dataclass(frozen=True)
class RowProblem:
    """Why a line (or the header, line 1) was rejected; ``column`` is a header title."""

    line: int
    column: str
    detail: str


@dataclass(frozen=True)
class CsvKind(Generic[M]):
    """How the rows of one kind of file become documents for ``model``."""

    name: str
    model: type[M]
    fields: tuple[str, ...]
    required: tuple[str, ...]
    extra: str | None
    """What other columns are: ``attributes``, ``scores``, or None (refused)."""
    build: Callable[[list[tuple[Column, str]]], dict[str, Any]]
    shared: tuple[str, ...] = ()
    """Columns whose cell holds for each of the row's values (a scores row's ``computed_at``):
    an error about one of them points at its own column, not the value's."""

    def column_of(self, path: tuple[str | int, ...], header: list[Column]) -> str:
        """The header title behind a validation error's path into the built document."""
        if not path:
            return ""
        name = str(path[0])
        if self.extra is not None and name == self.extra:
            if len(path) < 2:
                return ""
            name = str(path[1])
            if len(path) > 2 and str(path[2]) in self.shared:
                name = str(path[2])  # a row-wide cell copied into each of the row's values
        absent = name if name in self.fields else ""  # a known column the file lacks
        return next((c.title for c in header if c.name == name), absent)


def cell_value(cell: str, text: bool = False) -> str | int | float | bool:
    """An attribute cell: a boolean, an integer or a decimal when written plainly, else text."""
    if text:
        return cell
    if cell in ("true", "false"):
        return cell == "true"
    if _INTEGER.match(cell):
        return int(cell)
    if _DECIMAL.match(cell):
        return float(cell)
    return cell


def _profile(cells: list[tuple[Column, str]]) -> dict[str, Any]:
    document: dict[str, Any] = {"attributes": {}}
    for column, cell in cells:
        if column.name == "segments":
            document["segments"] = [s.strip() for s in cell.split(SEGMENT_SEPARATOR) if s.strip()]
        elif column.name in ("recipient_id", "updated_at", "source"):
            document[column.name] = cell
        else:
            document["attributes"][column.name] = cell_value(cell, column.text)
    return document


SHARED_SCORE_FIELDS = ("model_version", "computed_at")


def _scores(cells: list[tuple[Column, str]]) -> dict[str, Any]:
    shared = {c.name: cell for c, cell in cells if c.name in SHARED_SCORE_FIELDS}
    document: dict[str, Any] = {"scores": {}}
    for column, cell in cells:
        if column.name == "recipient_id":
            document["recipient_id"] = cell
        elif column.name not in shared:
            document["scores"][column.name] = {"value": cell, **shared}
    return document


def _plain(cells: list[tuple[Column, str]]) -> dict[str, Any]:
    return {column.name: cell for column, cell in cells}


def _event(cells: list[tuple[Column, str]]) -> dict[str, Any]:
    document: dict[str, Any] = {"attributes": {}}
    for column, cell in cells:
        if column.name in EVENTS.fields:
            document[column.name] = cell
        else:
            document["attributes"][column.name] = cell_value(cell, column.text)
    return document


PROFILES = CsvKind(
    "profiles",
    ProfileUpsert,
    ("recipient_id", "updated_at", "source", "segments"),
    ("recipient_id",),
    "attributes",
    _profile,
)
SCORES = CsvKind(
    "scores",
    ScoresUpsert,
    ("recipient_id", "model_version", "computed_at"),
    ("recipient_id",),
    "scores",
    _scores,
    SHARED_SCORE_FIELDS,
)
TRANSACTIONS = CsvKind(
    "transactions",
    Transaction,
    ("recipient_id", "order_id", "type", "at", "amount", "currency", "category"),
    ("recipient_id", "order_id", "at", "amount", "currency"),
    None,
    _plain,
)
EVENTS = CsvKind(
    "events",
    CustomerEvent,
    ("recipient_id", "event_id", "type", "at", "channel"),
    ("recipient_id", "type", "at"),
    "attributes",
    _event,
)


def parse_header(kind: CsvKind[Any], titles: list[str]) -> tuple[list[Column], list[RowProblem]]:
    """The columns of a header row, or the problems that make it unusable."""
    columns: list[Column] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for raw in titles:
        title = raw.strip()
        name, text = title, False
        if kind.extra == "attributes" and title.endswith(TEXT_SUFFIX):
            name, text = title.removesuffix(TEXT_SUFFIX), True
        if name in seen:
            problems.append(RowProblem(1, title, "this column appears twice"))
        elif name not in kind.fields and not _extra_allowed(kind, name):
            problems.append(RowProblem(1, title, _unknown_column(kind)))
        seen.add(name)
        columns.append(Column(title, name, text))
    for name in kind.required:
        if name not in seen:
            problems.append(RowProblem(1, name, "this required column is missing"))
    return columns, problems


def _extra_allowed(kind: CsvKind[Any], name: str) -> bool:
    if kind.extra == "attributes":
        return bool(_ATTRIBUTE_NAME.match(name))
    if kind.extra == "scores":
        return bool(_MODEL_NAME.match(name))
    return False


def _unknown_column(kind: CsvKind[Any]) -> str:
    known = ", ".join(kind.fields)
    if kind.extra == "attributes":
        return f"not one of {known}, nor an attribute name (a-z, 0-9, _; optional :str)"
    if kind.extra == "scores":
        return f"not one of {known}, nor a model name (a-z, 0-9, _ : . -)"
    return f"unknown column; the columns are {known}"


@dataclass(frozen=True)
class CsvRow:
    """One data row: its first line number and the document built from its cells."""

    line: int
    document: dict[str, Any]


def read_csv(
    lines: Iterable[str], kind: CsvKind[Any], undecodable: Collection[int] = ()
) -> Iterator[list[Column] | CsvRow | RowProblem]:
    """The header's columns first (unless the header is unusable: then its problems, and
    nothing else), then a CsvRow or a RowProblem per non-blank row. A row on any line in
    ``undecodable`` (not UTF-8) is refused; a quote that is never closed is reported at the
    row where it opened, with the lines it swallowed."""
    reader = csv.reader(iter(lines), strict=True)
    header: list[Column] | None = None
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowProblem(previous_end + 1, "", _csv_error(exc, previous_end + 1, reader))
            if header is None:
                return
            previous_end = reader.line_num
            continue
        line, previous_end = previous_end + 1, reader.line_num
        if undecodable and any(n in undecodable for n in range(line, previous_end + 1)):
            yield RowProblem(line, "", "not valid UTF-8")
            if header is None:
                return
            continue
        if header is None:
            header, problems = parse_header(kind, cells)
            if problems:
                yield from problems
                return
            yield header
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield RowProblem(line, "", f"expected {len(header)} cells, found {len(cells)}")
            continue
        present = [(c, cell.strip()) for c, cell in zip(header, cells, strict=True) if cell.strip()]
        yield CsvRow(line, kind.build(present))


def _csv_error(exc: csv.Error, line: int, reader: Any) -> str:
    """The reason a row could not be read; an unclosed quote names the lines it swallowed."""
    if str(exc) == "unexpected end of data":
        return (
            f"a quote opened in this row is never closed: lines {line}-{reader.line_num} "
            "(to the end of the file) were not read as rows"
        )
    return f"not valid CSV: {exc}"


KINDS: dict[str, CsvKind[Any]] = {
    kind.name: kind for kind in (PROFILES, SCORES, TRANSACTIONS, EVENTS)
}
"""Every CSV kind by name (the ``blanco import`` argument)."""


def _content_item(cells: list[tuple[Column, str]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for column, cell in cells:
        if column.name == "tags":
            document["tags"] = [t.strip() for t in cell.split(SEGMENT_SEPARATOR) if t.strip()]
        else:
            document[column.name] = cell
    return document


CONTENT_ITEMS = CsvKind(
    "content items",
    ContentItem,
    (
        "id",
        "title",
        "text",
        "image_asset",
        "url",
        "category",
        "tags",
        "price",
        "old_price",
        "badge",
        "cta",
        "valid_from",
        "valid_until",
        "priority",
        "stock",
        "available",
    ),
    ("id", "title", "url"),
    None,
    _content_item,
)
