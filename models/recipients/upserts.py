"""Recipient data as the data team pushes it: profiles, segments and predictive scores."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from models.recipients.profile_attributes import attribute_problem, finite_value

RECIPIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-:@.]{1,128}$")


def valid_recipient_id(recipient_id: str) -> bool:
    """Whether ``recipient_id`` may be used (URL-safe characters, at most 128)."""
    return bool(RECIPIENT_ID_PATTERN.match(recipient_id))


AttributeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ModelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_:.-]{0,63}$")]
SourceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
DEFAULT_SOURCE = "api"
AttributeValue = Annotated[
    Annotated[str, Field(max_length=2000)]
    | int
    | float
    | bool
    | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)]
    | None,
    BeforeValidator(finite_value),
]


def _recipient_id(value: str) -> str:
    if not valid_recipient_id(value):
        raise ValueError("1-128 characters of A-Z a-z 0-9 _ - : @ .")
    return value


RecipientId = Annotated[str, AfterValidator(_recipient_id)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileUpsert(_Model):
    """Attributes to merge into a profile (``null`` removes one); segments replace the set."""

    recipient_id: RecipientId
    attributes: dict[AttributeName, AttributeValue] = Field(default_factory=dict, max_length=200)
    segments: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=200
    )
    updated_at: dt.datetime | None = Field(
        None, description="When the source last changed; defaults to the time of the upsert."
    )
    source: SourceName = Field(
        DEFAULT_SOURCE,
        description="Which system sends the attributes (e.g. crm, web). Each attribute "
        "remembers its source, and is as fresh as that source's last upsert "
        "(updated_within_days conditions).",
    )

    @model_validator(mode="after")
    def _known_attributes(self) -> ProfileUpsert:
        problems = [
            InitErrorDetails(
                type=PydanticCustomError("known_attribute", "{problem}", {"problem": problem}),
                loc=("attributes", name),
                input=value,
            )
            for name, value in self.attributes.items()
            if (problem := attribute_problem(name, value))
        ]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


MISSING_COMPUTED_AT = (
    "required: when the model computed the scores (ISO 8601 with an offset), as the row's "
    "computed_at or on each score"
)


class ScoreValue(_Model):
    """One model's prediction for one recipient."""

    value: float = Field(allow_inf_nan=False)
    model_version: str = Field("", max_length=64)
    computed_at: dt.datetime | None = None

    @field_validator("computed_at")
    @classmethod
    def _aware(cls, moment: dt.datetime | None) -> dt.datetime | None:
        if moment is not None and moment.tzinfo is None:
            raise ValueError("needs a time zone offset")
        return moment


class ScoresUpsert(_Model):
    """Scores to set for one recipient, by model name; a bare number is just the value. Every
    score says when its model computed it: its own ``computed_at``, else the row's (required:
    a score's freshness is never the moment of its import)."""

    recipient_id: RecipientId
    computed_at: dt.datetime | None = Field(
        None, description="When the model computed the row's scores that give no time of their own."
    )
    scores: dict[ModelName, ScoreValue] = Field(min_length=1, max_length=100)

    @field_validator("computed_at")
    @classmethod
    def _aware_row(cls, moment: dt.datetime | None) -> dt.datetime | None:
        return ScoreValue._aware(moment)

    @model_validator(mode="after")
    def _every_score_dated(self) -> ScoresUpsert:
        undated = [name for name, score in self.scores.items() if score.computed_at is None]
        if undated and self.computed_at is None:
            detail = f"{MISSING_COMPUTED_AT} (undated: {', '.join(undated)})"
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("missing", detail),  # a field the input lacks
                        loc=("computed_at",),
                        input=None,
                    )
                ],
            )
        for name in undated:
            self.scores[name] = self.scores[name].model_copy(
                update={"computed_at": self.computed_at}
            )
        return self

    @field_validator("scores", mode="before")
    @classmethod
    def _bare_numbers(cls, scores: Any) -> Any:
        if isinstance(scores, dict):
            return {
                name: {"value": v} if isinstance(v, int | float) and not isinstance(v, bool) else v
                for name, v in scores.items()
            }
        return scores
