"""Admin API: reports (JSON, CSV, PNG chart) and experiments (state, promotion of a winner)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from models.errors import FieldError, InvalidInput, NotFound
from models.measurement.arm_counts import EXPERIMENT_SCOPE
from models.measurement.reports import (
    MAX_REPORT_DAYS,
    SendGroups,
    build_report,
    experiment_figures,
)
from models.measurement.stats import EXACT_FIELDS, SUMMED
from models.newsletter.sends import valid_send_id
from server.admin_api.campaigns import BLOCK, dump, store_changed
from server.admin_api.registry import api
from server.report_chart import CHART_SIZES, render_chart
from server.services import services

TAG = "reports"
REPORT_QUERY = {
    "from": "First UTC day, YYYY-MM-DD (default: 13 days before `to`).",
    "to": "Last UTC day, YYYY-MM-DD (default: today).",
    "block": "Only this block (a newsletter slot is `slot-<n>`).",
    "send": "Only this newsletter send (its id, YYYY-MM-DD): one row per block and variant; "
    "`from`/`to` are ignored.",
    "format": "json (default) or csv.",
}
MONEY_COLUMNS = (
    "orders",
    "revenue",
    "conversion_rate",
    "revenue_per_recipient",
    "view_orders",
    "view_revenue",
    "late_orders",
    "late_revenue",
)
"""A send's rows: the money credited to the row's block and variant (a day's rows leave them
empty: money is counted per send and to date, not per day)."""
CSV_COLUMNS = (
    "day",
    "block",
    "variant",
    *SUMMED,
    "approx_unique_opens",
    "approx_unique_clicks",
    *EXACT_FIELDS,
    *MONEY_COLUMNS,
)


def _day(name: str, default: dt.date) -> dt.date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"`{name}` is not a date", [FieldError((name,), "use YYYY-MM-DD")]
        ) from None


def _report(campaign_id: str) -> dict[str, Any]:
    services().campaigns.require_campaign(campaign_id)
    end = _day("to", services().clock().date())
    start = _day("from", end - dt.timedelta(days=13))
    if start > end or (end - start).days >= MAX_REPORT_DAYS:
        raise InvalidInput(
            "the date range is empty or too long",
            [FieldError(("from",), f"must be on or before `to`, at most {MAX_REPORT_DAYS} days")],
        )
    send = request.args.get("send") or None
    if send is not None and not valid_send_id(send):
        raise InvalidInput("`send` is not a send id", [FieldError(("send",), "use YYYY-MM-DD")])
    blanco = services()
    blocks = {block.id: block for block in blanco.campaigns.list_blocks(campaign_id)}
    recorded = blanco.sends.get(campaign_id, send) if send else None
    sent = recorded.counts.audience if recorded is not None else None
    sends = (
        [recorded]
        if recorded is not None
        else [s for s in blanco.sends.recent(campaign_id) if not send and start <= s.date <= end]
    )
    return build_report(
        blanco.stats,
        campaign_id,
        start,
        end,
        request.args.get("block"),
        send,
        blocks,
        sent,
        groups={s.id: SendGroups(s.counts.audience, s.counts.holdout) for s in sends},
        currency=blanco.settings.segmentation_currency,
    )


def _money_cells(report: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The money columns of a send's row (empty for a day's)."""
    if report["send"] is None:
        return {}
    arm = report["blocks"].get(row["block"], {}).get("arms", {}).get(row["variant"])
    if arm is None:
        return {}
    money = arm["money"]
    late = [money["late_click"], money["late_view"]]
    return {
        "orders": money["click"]["orders"],
        "revenue": money["click"]["revenue"],
        "conversion_rate": money["click"]["conversion_rate"],
        "revenue_per_recipient": money["click"]["revenue_per_recipient"],
        "view_orders": money["view"]["orders"],
        "view_revenue": money["view"]["revenue"],
        "late_orders": sum(m["orders"] for m in late),
        "late_revenue": f"{sum(Decimal(m['revenue']) for m in late):.2f}",
    }


def _cell(value: Any) -> Any:
    return "" if value is None else value


@api.operation(
    "GET",
    "/campaigns/<campaign_id>/report",
    summary="Opens, clicks and experiment figures",
    tag=TAG,
    query=REPORT_QUERY,
    errors=(404, 422),
)
def campaign_report(campaign_id: str) -> ResponseReturnValue:
    """Rows per day, block and variant; totals; comparisons against the control. Bot clicks
    and machine opens are counted apart and excluded from clicks, unique figures and rates."""
    report = _report(campaign_id)
    if request.args.get("format") == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in report["rows"]:
            cells = {**row, **_money_cells(report, row)}
            writer.writerow([_cell(cells.get(c)) for c in CSV_COLUMNS])
        return Response(
            buffer.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f"inline; filename={campaign_id}.csv"},
        )
    return jsonify(report)


@api.operation(
    "GET",
    "/campaigns/<campaign_id>/report.png",
    summary="The report as a chart",
    tag=TAG,
    query={**REPORT_QUERY, "size": "email (600 px wide, the default) or slide (1600×900)."},
    response_media_type="image/png",
    errors=(404, 422),
)
def campaign_chart(campaign_id: str) -> ResponseReturnValue:
    """Opens (people's and machines') and clicks on a time axis with every day, and each arm's
    exact click rate per recipient, drawn as a PNG at email or slide size."""
    size = request.args.get("size", "email")
    if size not in CHART_SIZES:
        raise InvalidInput(
            "`size` is not a chart size", [FieldError(("size",), f"use {' or '.join(CHART_SIZES)}")]
        )
    return Response(
        render_chart(_report(campaign_id), size),
        mimetype="image/png",
        headers={"Cache-Control": "no-store"},
    )


@api.operation(
    "GET",
    f"{BLOCK}/experiment",
    summary="Experiment state of a block",
    tag=TAG,
    errors=(404,),
)
def experiment_state(campaign_id: str, block_id: str) -> ResponseReturnValue:
    """The block's experiment settings, and its exact arms, control and comparisons to date
    (the block's part of the campaign report, number for number)."""
    block = services().campaigns.require_block(campaign_id, block_id)
    return jsonify(
        {
            "experiment": dump(block.experiment) if block.experiment else None,
            "scope": EXPERIMENT_SCOPE,
            **experiment_figures(services().stats, campaign_id, block),
        }
    )


class Promotion(BaseModel):
    """The variant that won."""

    model_config = ConfigDict(extra="forbid")

    variant_id: str = Field(min_length=1, max_length=64)


@api.operation(
    "POST",
    f"{BLOCK}/experiment/promote",
    summary="Promote the winning variant",
    tag=TAG,
    body=Promotion,
    errors=(404, 412, 422),
)
def promote_winner(campaign_id: str, block_id: str, body: Promotion) -> ResponseReturnValue:
    """End the experiment: the winner moves above the other variants and the experiment
    settings are removed (a new block version)."""
    block = services().campaigns.require_block(campaign_id, block_id)
    winner = block.variant(body.variant_id)
    if winner is None:
        raise NotFound(f"no variant {body.variant_id!r} in block {block_id!r}")
    top = max(v.priority for v in block.variants)
    variants = [
        {**dump(v), "priority": min(top + 1, 1000)} if v.id == winner.id else dump(v)
        for v in block.variants
    ]
    stored = store_changed(campaign_id, block, {"variants": variants, "experiment": None})
    return jsonify(dump(stored))
