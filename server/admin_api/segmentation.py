"""Admin API: the persona rule set and running the segmentation job."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models.recipients.segmentation import PersonaRules
from server.admin_api.registry import api
from server.services import services

TAG = "segmentation"


class SegmentationRun(BaseModel):
    """Options of a segmentation run (send ``{}`` for a run as of now)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime | None = Field(
        None, description="Segment as of this moment instead of now (orders after it ignored)."
    )


class SegmentationSummary(BaseModel):
    """What a run did: recipients segmented, members per segment, duration."""

    ran_at: str
    recipients: int
    customers: int
    changed: int = Field(description="Recipients whose attributes or segments changed.")
    rfm: dict[str, int]
    lifecycle: dict[str, int]
    persona: dict[str, int]
    duration_seconds: float


@api.operation(
    "GET",
    "/personas",
    summary="The persona rules",
    tag=TAG,
    response=PersonaRules,
)
def get_personas() -> ResponseReturnValue:
    """The persona rule set (empty when never set)."""
    return jsonify(
        services().personas.get().model_dump(mode="json", by_alias=True, exclude_none=True)
    )


@api.operation(
    "PUT",
    "/personas",
    summary="Replace the persona rules (first match wins)",
    tag=TAG,
    body=PersonaRules,
    response=PersonaRules,
)
def put_personas(body: PersonaRules) -> ResponseReturnValue:
    """Store the rules; the next segmentation run applies them."""
    stored = services().personas.put(body)
    return jsonify(stored.model_dump(mode="json", by_alias=True, exclude_none=True))


@api.operation(
    "POST",
    "/segmentation/run",
    summary="Recompute RFM, lifecycle and persona of every recipient (synchronous)",
    tag=TAG,
    body=SegmentationRun,
    response=SegmentationSummary,
)
def run_segmentation(body: SegmentationRun) -> ResponseReturnValue:
    """Run the segmentation job now (or as of ``at``) and answer its counts."""
    blanco = services()
    report = blanco.segmentation.run(body.at or blanco.clock())
    return jsonify(SegmentationSummary.model_validate(report.as_dict()).model_dump())
