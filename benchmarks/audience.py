"""Synthetic recipients: distinct first names, stored the way the data team pushes them."""

from __future__ import annotations

from collections.abc import Sequence

from models.recipients.upserts import ProfileUpsert, ScoresUpsert, ScoreValue
from server.services import Services

_HEADS = (
    "An", "Be", "Cor", "Da", "El", "Fe", "Gi", "Ha", "Is", "Jo", "Ka", "Li", "Ma", "No", "Ol",
    "Pe", "Ro", "Sa", "Ti", "Va", "Wil", "Xa", "Yo", "Zo",
)  # fmt: skip
_MIDDLES = ("", "ri", "le", "mi", "na", "ber", "lo")
_TAILS = (
    "na", "ra", "lie", "ko", "bert", "ssa", "mir", "dan", "va", "nie", "lon", "ric", "sha",
    "tte", "ine", "o", "us", "ia", "é", "ël", "jn", "ximiliane",
)  # fmt: skip


def first_names(count: int, *, skip: int = 0) -> list[str]:
    """``count`` distinct, deterministic first names of varied length, after the first ``skip``."""
    names: list[str] = []
    seen: set[str] = set()
    index = 0
    while len(names) < skip + count:
        head = _HEADS[index % len(_HEADS)]
        tail = _TAILS[(index // len(_HEADS)) % len(_TAILS)]
        middle = _MIDDLES[(index // (len(_HEADS) * len(_TAILS))) % len(_MIDDLES)]
        if index >= len(_HEADS) * len(_TAILS) * len(_MIDDLES):
            middle += str(index)
        name = head + middle + tail
        if name not in seen:
            seen.add(name)
            names.append(name)
        index += 1
    return names[skip:]


def store_recipients(services: Services, prefix: str, names: Sequence[str]) -> list[str]:
    """Store one active, likely-to-travel recipient per name (the demo's personalised
    ``city-trip`` variant); return their ids."""
    ids = [f"{prefix}-{i:05d}" for i in range(len(names))]
    services.recipients.upsert_profiles(
        ProfileUpsert(
            recipient_id=rid,
            attributes={"first_name": name, "lifecycle": "active", "time_zone": "Europe/Amsterdam"},
        )
        for rid, name in zip(ids, names, strict=True)
    )
    services.recipients.upsert_scores(
        ScoresUpsert(
            recipient_id=rid,
            computed_at=services.clock(),
            scores={"travel_propensity": ScoreValue(value=0.9, model_version="bench")},
        )
        for rid in ids
    )
    return ids
