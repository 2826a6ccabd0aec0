"""A bulk ingest's report (docs/recipient-data.md): every kind of error with its count, however
many lines were rejected, next to the first rejected lines one by one."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from models.ingest.bulk_ingest import MAX_REPORTED_ERRORS, ingest_jsonl


class Row(BaseModel):
    """A row to ingest."""

    recipient_id: str = Field(min_length=1, max_length=8)
    amount: float = Field(ge=0)


def test_every_error_kind_is_counted_past_the_reported_lines() -> None:
    lines = (
        [json.dumps({"recipient_id": "anna", "amount": -1})] * 1200
        + ["{not json"] * 3
        + [json.dumps({"recipient_id": f"r{n}", "amount": 2}) for n in range(5)]
        + [json.dumps({"recipient_id": "x" * (9 + n % 3), "amount": 1}) for n in range(40)]
    )
    report = ingest_jsonl(lines, Row, len)
    found = report.as_dict()
    assert (found["received"], found["stored"], found["rejected"]) == (1248, 5, 1243)
    assert len(found["errors"]) == MAX_REPORTED_ERRORS
    kinds = [(k["pointer"], k["count"], k["first_line"]) for k in found["error_kinds"]]
    assert kinds == [("/amount", 1200, 1), ("/recipient_id", 40, 1209), ("", 3, 1201)]
    assert found["error_kinds"][2]["detail"] == "not valid JSON"
    assert sum(k["count"] for k in found["error_kinds"]) == found["rejected"]
