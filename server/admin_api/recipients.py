"""Admin API: recipient profiles and predictive scores, single and bulk; tokens; erasure."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from models.api_keys import ApiKey
from models.errors import FieldError, Gone, InvalidInput, NotFound
from models.ingest.csv_rows import PROFILES, SCORES
from models.recipients.upserts import ProfileUpsert, ScoresUpsert, valid_recipient_id
from server.admin_api.bulk_bodies import csv_body, ingest_request
from server.admin_api.registry import api
from server.logs import current_request_id
from server.services import services

TAG = "recipients"
RECIPIENT = "/recipients/<recipient_id>"
log = logging.getLogger(__name__)


def _checked(recipient_id: str) -> str:
    if not valid_recipient_id(recipient_id):
        raise InvalidInput(
            "invalid recipient id",
            [FieldError(("recipient_id",), "1-128 characters of A-Z a-z 0-9 _ - : @ .")],
        )
    return recipient_id


class TokenAnswer(BaseModel):
    """A recipient's signed token, for ESP data."""

    recipient_id: str
    token: str


@api.operation(
    "PUT",
    f"{RECIPIENT}/profile",
    summary="Upsert a profile (attributes merge; null removes)",
    tag=TAG,
    scope="ingest",
    body=ProfileUpsert,
    body_fills=("recipient_id", "recipient_id"),
    errors=(409, 422),
)
def put_profile(recipient_id: str, body: ProfileUpsert) -> ResponseReturnValue:
    """Merge attributes into a profile; ``segments`` replaces the segment set (409: erased)."""
    services().recipients.upsert_profiles([body])
    return jsonify(services().recipients.get_profile(recipient_id))


@api.operation(
    "GET",
    f"{RECIPIENT}/profile",
    summary="Get a profile",
    tag=TAG,
    scope="ingest",
    errors=(404, 422),
)
def get_profile(recipient_id: str) -> ResponseReturnValue:
    """A profile with its segments."""
    profile = services().recipients.get_profile(_checked(recipient_id))
    if profile is None:
        raise NotFound(f"no profile for recipient {recipient_id!r}")
    return jsonify(profile)


def _scores_document(recipient_id: str) -> dict[str, Any]:
    scores = services().recipients.get_scores(recipient_id)
    return {
        "recipient_id": recipient_id,
        "scores": {name: s.model_dump(mode="json") for name, s in sorted(scores.items())},
    }


@api.operation(
    "PUT",
    f"{RECIPIENT}/scores",
    summary="Upsert predictive scores",
    tag=TAG,
    scope="ingest",
    body=ScoresUpsert,
    body_fills=("recipient_id", "recipient_id"),
    errors=(409, 422),
)
def put_scores(recipient_id: str, body: ScoresUpsert) -> ResponseReturnValue:
    """Set scores by model name (other models' scores stay; 409 for an erased recipient)."""
    services().recipients.upsert_scores([body])
    return jsonify(_scores_document(recipient_id))


@api.operation(
    "GET",
    f"{RECIPIENT}/scores",
    summary="Get predictive scores",
    tag=TAG,
    scope="ingest",
    errors=(404, 422),
)
def get_scores(recipient_id: str) -> ResponseReturnValue:
    """Every score of a recipient."""
    document = _scores_document(_checked(recipient_id))
    if not document["scores"]:
        raise NotFound(f"no scores for recipient {recipient_id!r}")
    return jsonify(document)


@api.operation(
    "DELETE",
    RECIPIENT,
    summary="Erase everything Blanco holds about a recipient",
    tag=TAG,
    scope="admin",
    status=204,
    errors=(422,),
)
def erase_recipient(recipient_id: str) -> ResponseReturnValue:
    """Erase the recipient's data, refuse the id from now on and log the erasure (no id)."""
    key: ApiKey = g.api_key
    record = services().eraser.erase(
        _checked(recipient_id),
        api_key_id=key.id,
        api_key_name=key.name,
        request_id=current_request_id(),
        now=services().clock(),
    )
    log.info("erased a recipient on request (%d keys)", record.keys_removed)
    return Response(status=204)


@api.operation(
    "GET",
    f"{RECIPIENT}/token",
    summary="The recipient's signed token",
    tag=TAG,
    scope="admin",
    response=TokenAnswer,
    errors=(410, 422),
)
def get_token(recipient_id: str) -> ResponseReturnValue:
    """The token that ESP data carries in image and click URLs (none for an erased recipient:
    410)."""
    checked = _checked(recipient_id)
    if services().tombstones.is_erased(checked):
        raise Gone(f"recipient {recipient_id!r} was erased: Blanco issues no token for them")
    token = services().signer.sign(checked)
    return jsonify(TokenAnswer(recipient_id=recipient_id, token=token).model_dump())


@api.operation(
    "POST",
    "/profiles/bulk",
    summary="Bulk upsert profiles (JSON Lines or CSV)",
    tag=TAG,
    scope="ingest",
    body=ProfileUpsert,
    body_media_type="application/x-ndjson",
    other_bodies=csv_body(PROFILES),
    errors=(415,),
)
def bulk_profiles() -> ResponseReturnValue:
    """One ProfileUpsert per line or CSV row; good ones are stored, bad ones reported by line."""
    return jsonify(ingest_request(PROFILES, services().recipients.upsert_profiles).as_dict())


@api.operation(
    "POST",
    "/scores/bulk",
    summary="Bulk upsert predictive scores (JSON Lines or CSV)",
    tag=TAG,
    scope="ingest",
    body=ScoresUpsert,
    body_media_type="application/x-ndjson",
    other_bodies=csv_body(SCORES),
    errors=(415,),
)
def bulk_scores() -> ResponseReturnValue:
    """One ScoresUpsert per line or CSV row; good ones are stored, bad ones reported by line."""
    return jsonify(ingest_request(SCORES, services().recipients.upsert_scores).as_dict())
