"""Admin API: a campaign's newsletter (schedule, audience, slots), its suppression list, and
its sends, each recorded by exporting the day's audience."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Response, jsonify, stream_with_context
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from models.errors import NotFound
from models.newsletter.audience_export import columns, encode_rows
from models.newsletter.newsletters import Newsletter, NewsletterSpec
from models.newsletter.sends import Send, plan_send
from models.recipients.upserts import RecipientId
from server.admin_api.registry import api
from server.services import audience_export, services

TAG = "newsletters"
NEWSLETTER = "/campaigns/<campaign_id>/newsletter"
SENDS = "/campaigns/<campaign_id>/sends"
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


class SuppressionRequest(BaseModel):
    """Recipients to leave out of every send of the newsletter."""

    model_config = ConfigDict(extra="forbid")

    recipient_ids: list[RecipientId] = Field(min_length=1, max_length=100_000)


class SendRequest(BaseModel):
    """Which day's audience to export, and how."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = Field(
        None, description="The send's local date; default today in the schedule's time zone."
    )
    format: Literal["csv", "jsonl"] = "csv"


class SendList(BaseModel):
    """A newsletter's sends, newest first."""

    sends: list[Send]


class HoldoutAnswer(BaseModel):
    """The recipients a send held out."""

    send_id: str
    recipient_ids: Annotated[list[str], Field(description="Sorted.")]


@api.operation(
    "PUT",
    NEWSLETTER,
    summary="Create or replace the campaign's newsletter",
    tag=TAG,
    body=NewsletterSpec,
    response=Newsletter,
    errors=(404,),
)
def put_newsletter(campaign_id: str, body: NewsletterSpec) -> ResponseReturnValue:
    """Store a new version of the newsletter definition."""
    newsletter, created = services().newsletters.put(campaign_id, body)
    return jsonify(
        newsletter.model_dump(mode="json", by_alias=True, exclude_none=True)
    ), 201 if created else 200


@api.operation(
    "GET",
    NEWSLETTER,
    summary="Get the campaign's newsletter",
    tag=TAG,
    response=Newsletter,
    errors=(404,),
)
def get_newsletter(campaign_id: str) -> ResponseReturnValue:
    """The newsletter definition."""
    newsletter = services().newsletters.require(campaign_id)
    return jsonify(newsletter.model_dump(mode="json", by_alias=True, exclude_none=True))


@api.operation(
    "DELETE",
    NEWSLETTER,
    summary="Remove the campaign's newsletter",
    tag=TAG,
    status=204,
    errors=(404,),
)
def delete_newsletter(campaign_id: str) -> ResponseReturnValue:
    """Remove the definition; recorded sends stay for reports."""
    services().newsletters.delete(campaign_id)
    return Response(status=204)


@api.operation(
    "POST",
    f"{NEWSLETTER}/suppressions",
    summary="Suppress recipients from the newsletter",
    tag=TAG,
    body=SuppressionRequest,
    errors=(404,),
)
def suppress(campaign_id: str, body: SuppressionRequest) -> ResponseReturnValue:
    """Add recipients to the suppression list; erased recipients are left out (Blanco keeps
    nothing about them, a suppression included) and counted in ``erased``."""
    store = services().newsletters
    store.require(campaign_id)
    erased = services().tombstones.erased_among(body.recipient_ids)
    added = store.suppress(campaign_id, (r for r in body.recipient_ids if r not in erased))
    return jsonify(
        {
            "added": added,
            "erased": len(erased),
            "suppressed": store.suppressed_count(campaign_id),
        }
    )


@api.operation(
    "DELETE",
    f"{NEWSLETTER}/suppressions/<recipient_id>",
    summary="Take a recipient off the suppression list",
    tag=TAG,
    status=204,
    errors=(404,),
)
def unsuppress(campaign_id: str, recipient_id: str) -> ResponseReturnValue:
    """Remove one suppression."""
    if not services().newsletters.unsuppress(campaign_id, recipient_id):
        raise NotFound(f"{recipient_id!r} is not suppressed")
    return Response(status=204)


@api.operation(
    "POST",
    SENDS,
    summary="Record today's send and stream its audience (CSV or JSON Lines)",
    tag=TAG,
    body=SendRequest,
    response_media_type="text/csv",
    other_response_media_types=("application/x-ndjson",),
    errors=(404, 409, 422),
)
def export_send(campaign_id: str, body: SendRequest) -> ResponseReturnValue:
    """The day's audience with each recipient's token, send id and ESP fields, streamed; the
    send (with its counts and holdout) is recorded as the export runs. Exporting a day again
    replaces that day's send."""
    svc = services()
    newsletter = svc.newsletters.require(campaign_id)
    now = svc.clock()
    send = plan_send(newsletter, body.date, now)
    export = audience_export(svc)
    export.start(send)  # a running export of the same send is a 409, before any byte is sent
    rows = export.rows(newsletter, send, now)
    body_text = encode_rows(rows, columns(newsletter), body.format)
    response = Response(stream_with_context(body_text), mimetype=MEDIA_TYPES[body.format])
    response.headers["X-Blanco-Send-Id"] = send.id
    response.headers["Cache-Control"] = "no-store"
    filename = f"{campaign_id}-{send.id}.{body.format}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@api.operation("GET", SENDS, summary="List the newsletter's sends", tag=TAG, response=SendList)
def list_sends(campaign_id: str) -> ResponseReturnValue:
    """The newest 100 sends first."""
    sends = services().sends.recent(campaign_id)
    return jsonify(SendList(sends=sends).model_dump(mode="json"))


@api.operation(
    "GET", f"{SENDS}/<send_id>", summary="Get a send", tag=TAG, response=Send, errors=(404,)
)
def get_send(campaign_id: str, send_id: str) -> ResponseReturnValue:
    """A send with its counts."""
    return jsonify(services().sends.require(campaign_id, send_id).model_dump(mode="json"))


@api.operation(
    "GET",
    f"{SENDS}/<send_id>/holdout",
    summary="List the recipients a send held out",
    tag=TAG,
    response=HoldoutAnswer,
    errors=(404,),
)
def get_holdout(campaign_id: str, send_id: str) -> ResponseReturnValue:
    """The send's control group."""
    sends = services().sends
    sends.require(campaign_id, send_id)
    answer = HoldoutAnswer(send_id=send_id, recipient_ids=sends.holdout_ids(campaign_id, send_id))
    return jsonify(answer.model_dump())
