"""Today's audience of a newsletter: score threshold on fresh scores, consent, suppressions and
a holdout, streamed and recorded as the send."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest

from models.campaigns.experiments import split_point
from models.csv_cells import safe_cell
from models.newsletter.audience_export import columns, encode_rows
from models.newsletter.sends import plan_send
from models.recipients.upserts import ProfileUpsert, ScoresUpsert
from server.services import Services, audience_export
from tests.factories import FakeClock
from tests.newsletter_fixtures import item, store_newsletter

RULE = {"score": "travel_propensity", "gte": 0.7}


def push(
    services: Services,
    recipient_id: str,
    score: float | None,
    *,
    consent: bool | None = True,
    computed_at: dt.datetime | None = None,
) -> None:
    attributes: dict[str, object] = {"email": f"{recipient_id}@example.com"}
    if consent is not None:
        attributes["consent_email"] = consent
    services.recipients.upsert_profiles(
        [ProfileUpsert.model_validate({"recipient_id": recipient_id, "attributes": attributes})]
    )
    if score is not None:
        record: dict[str, object] = {"value": score}
        if computed_at is not None:
            record["computed_at"] = computed_at
        services.recipients.upsert_scores(
            [
                ScoresUpsert.model_validate(
                    {
                        "recipient_id": recipient_id,
                        "computed_at": "2026-11-23T06:00:00Z",
                        "scores": {"travel_propensity": record},
                    }
                )
            ]
        )


def test_the_days_audience_is_exactly_the_expected_list(
    services: Services, clock: FakeClock
) -> None:
    newsletter = store_newsletter(services, [item("x", "beach")], audience=RULE, holdout=0.2)
    eligible = [f"fan-{i:02d}" for i in range(40)]
    for rid in eligible:
        push(services, rid, 0.9, computed_at=clock.now - dt.timedelta(hours=30))
    push(services, "edge", 0.7)  # the threshold itself is in
    push(services, "low", 0.69)
    push(services, "unscored", None)
    push(services, "stale", 0.95, computed_at=clock.now - dt.timedelta(days=8))  # max age 7 d
    push(services, "no-consent", 0.9, consent=False)
    push(services, "consent-unknown", 0.9, consent=None)
    push(services, "suppressed", 0.9)
    services.newsletters.suppress("daily", ["suppressed"])
    eligible.append("edge")

    send = plan_send(newsletter, dt.date(2026, 11, 23), clock.now)
    rows = list(audience_export(services).rows(newsletter, send, clock.now))

    held = {r for r in eligible if split_point(r, "daily", "", "newsletter-holdout") < 0.2}
    assert 2 <= len(held) <= 16  # about a fifth of 41
    assert sorted(row["recipient_id"] for row in rows) == sorted(set(eligible) - held)
    for row in rows:
        assert services.signer.verify(row["bl_token"]) == row["recipient_id"]
        assert row["bl_send"] == "2026-11-23"
        assert row["email"] == f"{row['recipient_id']}@example.com"
        assert row["first_name"] is None

    recorded = services.sends.require("daily", "2026-11-23")
    assert recorded.status == "exported"
    assert recorded.send_time == dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # 10:00 CET
    assert recorded.counts.model_dump() == {
        "considered": 47,
        "audience": len(rows),
        "holdout": len(held),
        "suppressed": 1,
        "no_consent": 2,
        "not_selected": 3,
    }
    assert services.sends.holdout_ids("daily", "2026-11-23") == sorted(held)
    assert all(services.sends.was_sent_to("daily", "2026-11-23", r["recipient_id"]) for r in rows)


def test_exporting_a_day_again_replaces_its_send(services: Services, clock: FakeClock) -> None:
    newsletter = store_newsletter(services, [item("x")], audience=RULE)
    push(services, "anna", 0.9)
    push(services, "bram", 0.9)
    send = plan_send(newsletter, None, clock.now)
    assert len(list(audience_export(services).rows(newsletter, send, clock.now))) == 2

    push(services, "bram", 0.1)
    again = list(audience_export(services).rows(newsletter, send, clock.now))
    assert [row["recipient_id"] for row in again] == ["anna"]
    assert services.sends.require("daily", send.id).counts.audience == 1
    assert not services.sends.was_sent_to("daily", send.id, "bram")


def test_csv_has_a_header_and_one_line_per_recipient(services: Services, clock: FakeClock) -> None:
    newsletter = store_newsletter(services, [item("x")], esp_fields=["email", "tags"])
    services.recipients.upsert_profiles(
        [
            ProfileUpsert.model_validate(
                {
                    "recipient_id": "anna",
                    "attributes": {
                        "consent_email": True,
                        "email": "anna@example.com",
                        "tags": ["a", "b"],
                    },
                }
            )
        ]
    )
    send = plan_send(newsletter, None, clock.now)
    rows = audience_export(services).rows(newsletter, send, clock.now)
    text = "".join(encode_rows(rows, columns(newsletter), "csv"))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["recipient_id", "bl_token", "bl_send", "email", "tags"]
    assert parsed[1][0] == "anna"
    assert parsed[1][3:] == ["anna@example.com", '["a", "b"]']
    assert len(parsed) == 2


def test_one_export_of_a_send_at_a_time(
    services: Services, clock: FakeClock, client: Any, admin_headers: dict[str, str]
) -> None:
    from models.errors import Conflict

    newsletter = store_newsletter(services, [item("x")])
    for rid in ("anna", "bram"):
        push(services, rid, 0.9)
    send = plan_send(newsletter, None, clock.now)
    first = audience_export(services).rows(newsletter, send, clock.now)
    next(first)  # the first export is under way
    with pytest.raises(Conflict):
        list(audience_export(services).rows(newsletter, send, clock.now))
    refused = client.post(
        "/api/v1/campaigns/daily/sends", json={"format": "csv"}, headers=admin_headers
    )
    assert refused.status_code == 409
    assert len(list(first)) == 1  # the first export finishes whole
    assert services.sends.require("daily", send.id).counts.audience == 2
    again = client.post(
        "/api/v1/campaigns/daily/sends", json={"format": "jsonl"}, headers=admin_headers
    )
    assert again.status_code == 200
    assert len(again.get_data(as_text=True).splitlines()) == 2


def test_segment_and_event_rules_still_select_the_right_people(
    services: Services, clock: FakeClock
) -> None:
    from models.recipients.customer_data import CustomerEvent

    rule = {"any": [{"segment": "vip"}, {"event": "site_visit", "within_days": 7}]}
    newsletter = store_newsletter(services, [item("x")], audience=rule)
    push(services, "vip", None)
    services.recipients.upsert_profiles(
        [ProfileUpsert.model_validate({"recipient_id": "vip", "segments": ["vip"]})]
    )
    push(services, "visitor", None)
    services.customer_data.add_events(
        [
            CustomerEvent.model_validate(
                {"recipient_id": "visitor", "type": "site_visit", "at": clock.now.isoformat()}
            )
        ]
    )
    push(services, "neither", None)
    send = plan_send(newsletter, None, clock.now)
    rows = audience_export(services).rows(newsletter, send, clock.now)
    assert sorted(row["recipient_id"] for row in rows) == ["vip", "visitor"]


@pytest.mark.parametrize(
    ("rule", "segments", "events"),
    [
        (None, False, False),
        ({"score": "travel_propensity", "gte": 0.7}, False, False),
        ({"all": [{"segment": "vip"}, {"score": "p", "gte": 0.1}]}, True, False),
        ({"not": {"event": "booking", "within_days": 3}}, False, True),
        ({"seen_within_days": 90}, False, True),
    ],
)
def test_the_export_reads_segments_and_events_only_for_rules_that_use_them(
    services: Services, rule: dict[str, Any] | None, segments: bool, events: bool
) -> None:
    from models.newsletter.audience_export import AudienceReads

    extra: dict[str, Any] = {"audience": rule} if rule is not None else {}
    newsletter = store_newsletter(services, [item("x")], **extra)
    assert AudienceReads.of(newsletter) == AudienceReads(segments, events)


def test_csv_neutralises_formulas_and_line_breaks_and_json_lines_keep_the_values(
    services: Services, clock: FakeClock
) -> None:
    newsletter = store_newsletter(services, [item("x")], esp_fields=["first_name", "city", "n"])
    hostile = {
        "first_name": '=HYPERLINK("https://evil.example","Anna")',
        "city": "Den\nHaag\r\nZuid",
        "n": -3,
    }
    services.recipients.upsert_profiles(
        [
            ProfileUpsert.model_validate(
                {"recipient_id": "anna", "attributes": {"consent_email": True, **hostile}}
            )
        ]
    )
    send = plan_send(newsletter, None, clock.now)
    rows = list(audience_export(services).rows(newsletter, send, clock.now))
    parsed = list(
        csv.reader(io.StringIO("".join(encode_rows(iter(rows), columns(newsletter), "csv"))))
    )
    assert len(parsed) == 2  # no line break split the row
    assert parsed[1][3:] == ['\'=HYPERLINK("https://evil.example","Anna")', "Den Haag Zuid", "-3"]
    lines = "".join(encode_rows(iter(rows), columns(newsletter), "jsonl")).splitlines()
    assert {k: json.loads(lines[0])[k] for k in hostile} == hostile


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+31 6 1234", "'+31 6 1234"),
        ("-Anna", "'-Anna"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "' =cmd"),
        ("Anna", "Anna"),
        ("a\u2028b\x85c", "a b c"),
        ("", ""),
    ],
)
def test_safe_cell(text: str, cell: str) -> None:
    assert safe_cell(text) == cell


def test_an_export_for_a_later_send_judges_scores_at_that_send(
    services: Services, clock: FakeClock
) -> None:
    newsletter = store_newsletter(services, [item("x")], audience=RULE)
    week = dt.timedelta(days=7)  # the default maximum age
    push(services, "fresh", 0.9, computed_at=clock.now - dt.timedelta(hours=1))
    push(services, "ageing", 0.9, computed_at=clock.now - week + dt.timedelta(hours=2))
    tomorrow = plan_send(newsletter, dt.date(2026, 11, 24), clock.now)  # 09:00 UTC, 23.5 h on
    rows = list(audience_export(services).rows(newsletter, tomorrow, clock.now))
    assert [row["recipient_id"] for row in rows] == ["fresh"]  # "ageing" is stale by then
    today = plan_send(newsletter, None, clock.now)  # its 10:00 (Amsterdam) has passed: now
    rows = list(audience_export(services).rows(newsletter, today, clock.now))
    assert sorted(row["recipient_id"] for row in rows) == ["ageing", "fresh"]


def test_the_send_records_when_its_export_finished(services: Services, clock: FakeClock) -> None:
    newsletter = store_newsletter(services, [item("x")])
    for rid in ("anna", "bram"):
        push(services, rid, 0.9)
    send = plan_send(newsletter, None, clock.now)
    for _ in audience_export(services).rows(newsletter, send, clock.now):
        clock.advance(seconds=3)  # the ESP reads slowly
    recorded = services.sends.get("daily", send.id)
    assert recorded is not None
    assert recorded.started_at == send.started_at
    assert recorded.finished_at == send.started_at + dt.timedelta(seconds=6)


@pytest.mark.parametrize("rotation", ["persistent", "per_send"])
def test_the_holdout_is_persistent_or_drawn_per_send(
    services: Services, clock: FakeClock, rotation: str
) -> None:
    newsletter = store_newsletter(
        services, [item("x")], audience=RULE, holdout=0.3, holdout_rotation=rotation
    )
    people = [f"r{n:02d}" for n in range(60)]
    for rid in people:
        push(services, rid, 0.9)
    held = []
    for day in (dt.date(2026, 11, 23), dt.date(2026, 11, 24)):
        send = plan_send(newsletter, day, clock.now)
        rows = list(audience_export(services).rows(newsletter, send, clock.now))
        assert len(rows) + len(services.sends.holdout_ids("daily", send.id)) == len(people)
        held.append(set(services.sends.holdout_ids("daily", send.id)))
    assert all(8 <= len(ids) <= 30 for ids in held)  # about 30% of 60
    if rotation == "persistent":
        assert held[0] == held[1]
    else:
        assert held[0] != held[1]
        assert all(
            (rid in ids) == (split_point(rid, "daily", "", f"newsletter-holdout:{day}") < 0.3)
            for ids, day in zip(held, ("2026-11-23", "2026-11-24"), strict=True)
            for rid in people
        )
