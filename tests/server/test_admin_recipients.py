"""Admin API v1: recipient profiles and scores (single and bulk), tokens, erasure and TTLs."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from models.storage import keys
from server.services import Services
from server.tokens import TokenSigner
from tests.conftest import SIGNING_KEY
from tests.factories import (
    AdminApi,
    error_pointers,
    jsonl,
    problem,
    redis_contents,
    store_block,
    store_recipient,
    variant,
)

PROFILE = "/recipients/anna/profile"
SCORES = "/recipients/anna/scores"
NDJSON = "application/x-ndjson"


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


def recipient_state(client: redis.Redis, recipient_id: str) -> dict[str, Any]:
    """Every stored key of a recipient with its value."""
    return redis_contents(client, f"*{{r:{recipient_id}}}*")


# profiles


def test_put_profile_answers_the_stored_profile(api: AdminApi) -> None:
    response = api.put(
        PROFILE,
        json={"attributes": {"first_name": "Anna", "age": 34, "vip": True}, "segments": ["b", "a"]},
    )
    assert response.status_code == 200
    stored = response.get_json()
    assert stored["recipient_id"] == "anna"
    assert stored["attributes"] == {"first_name": "Anna", "age": 34, "vip": True}
    assert stored["segments"] == ["a", "b"]
    assert stored["updated_at"]
    fetched = api.get(PROFILE)
    assert fetched.status_code == 200
    assert fetched.get_json() == stored


def test_profile_keeps_the_given_updated_at(api: AdminApi) -> None:
    api.put(PROFILE, json={"attributes": {"a": 1}, "updated_at": "2026-01-02T03:04:05+00:00"})
    assert api.get(PROFILE).get_json()["updated_at"] == "2026-01-02T03:04:05+00:00"


def test_profile_shows_each_attributes_source_and_when_sources_wrote(api: AdminApi) -> None:
    crm = {
        "attributes": {"first_name": "Anna", "city": "Utrecht"},
        "source": "crm",
        "updated_at": "2025-01-02T03:04:05+00:00",
    }
    web = {"attributes": {"city": "Gouda"}, "source": "web", "updated_at": "2026-11-20T08:00:00Z"}
    api.put(PROFILE, json=crm)
    stored = api.put(PROFILE, json=web).get_json()
    assert stored["attributes"] == {"first_name": "Anna", "city": "Gouda"}
    assert stored["sources"] == {
        "crm": "2025-01-02T03:04:05+00:00",
        "web": "2026-11-20T08:00:00+00:00",
    }
    assert stored["attribute_sources"] == {"city": "web", "first_name": "crm"}
    assert api.get(PROFILE).get_json() == stored
    plain = api.put("/recipients/bram/profile", json={"attributes": {"a": 1}}).get_json()
    assert set(plain["sources"]) == {"api"}


def test_attributes_merge_and_null_removes_one(api: AdminApi) -> None:
    api.put(PROFILE, json={"attributes": {"first_name": "Anna", "city": "Utrecht", "age": 34}})
    response = api.put(PROFILE, json={"attributes": {"city": None, "age": 35, "tier": "gold"}})
    assert response.status_code == 200
    expected = {"first_name": "Anna", "age": 35, "tier": "gold"}
    assert response.get_json()["attributes"] == expected
    assert api.get(PROFILE).get_json()["attributes"] == expected


def test_removing_an_absent_attribute_is_harmless(api: AdminApi) -> None:
    api.put(PROFILE, json={"attributes": {"first_name": "Anna"}})
    response = api.put(PROFILE, json={"attributes": {"never_set": None}})
    assert response.status_code == 200
    assert response.get_json()["attributes"] == {"first_name": "Anna"}


def test_segments_replace_the_set_and_stay_when_omitted(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    api.put(PROFILE, json={"attributes": {"a": 1}, "segments": ["loyal", "travel"]})
    kept = api.put(PROFILE, json={"attributes": {"b": 2}}).get_json()
    assert kept["segments"] == ["loyal", "travel"]
    replaced = api.put(PROFILE, json={"segments": ["churn-risk"]}).get_json()
    assert replaced["segments"] == ["churn-risk"]
    assert replaced["attributes"] == {"a": 1, "b": 2}
    cleared = api.put(PROFILE, json={"segments": []}).get_json()
    assert cleared["segments"] == []
    assert not redis_client.exists(keys.segments("anna"))


def test_same_upsert_twice_leaves_the_same_state(api: AdminApi, redis_client: redis.Redis) -> None:
    upsert = {
        "attributes": {"first_name": "Anna", "gone": None, "tags": ["x", "y"]},
        "segments": ["loyal"],
        "updated_at": "2026-11-20T08:00:00+00:00",
    }
    scores = {
        "computed_at": "2026-11-23T06:00:00Z",
        "scores": {"travel": {"value": 0.8, "computed_at": "2026-11-20T08:00:00Z"}},
    }
    first = api.put(PROFILE, json=upsert).get_json()
    api.put(SCORES, json=scores)
    once = recipient_state(redis_client, "anna")
    second = api.put(PROFILE, json=upsert).get_json()
    api.put(SCORES, json=scores)
    assert first == second
    assert recipient_state(redis_client, "anna") == once
    assert set(once) == {keys.profile("anna"), keys.segments("anna"), keys.scores("anna")}


def test_same_upsert_twice_without_timestamps_keeps_the_same_data(api: AdminApi) -> None:
    upsert = {"attributes": {"first_name": "Anna", "age": 34}, "segments": ["loyal"]}
    first = api.put(PROFILE, json=upsert).get_json()
    second = api.put(PROFILE, json=upsert).get_json()
    assert (first["attributes"], first["segments"]) == (second["attributes"], second["segments"])


def test_unknown_profile_is_not_found(api: AdminApi) -> None:
    body = problem(api.get("/recipients/nobody/profile"), 404)
    assert "nobody" in body["detail"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"recipient_id": "bob", "attributes": {"a": 1}}, "/recipient_id"),
        ({"attributes": {"a": 1}, "updated_at": "yesterday"}, "/updated_at"),
        ({"attributes": {"a": 1}, "segments": ["ok", ""]}, "/segments/1"),
        ({"attributes": {"a": "x" * 2001}}, "/attributes/a"),
        ({"attributes": {"tags": {"nested": 1}}}, "/attributes/tags"),
        ({"attributes": {"First_Name": "Anna"}}, "/attributes/First_Name"),
        ({"attrs": {"a": 1}}, "/attrs"),
        ({"attributes": {"a": 1}, "source": "The CRM"}, "/source"),
    ],
)
def test_invalid_profile_points_at_the_field_and_stores_nothing(
    api: AdminApi, redis_client: redis.Redis, body: dict[str, Any], pointer: str
) -> None:
    api.put(PROFILE, json={"attributes": {"first_name": "Anna"}})
    before = recipient_state(redis_client, "anna")
    # a value no member of a union accepts has one problem per member, all at the value
    assert {p for p, _ in error_pointers(api.put(PROFILE, json=body))} == {pointer}
    assert recipient_state(redis_client, "anna") == before
    assert recipient_state(redis_client, "bob") == {}


def test_invalid_recipient_id_in_the_url(api: AdminApi, redis_client: redis.Redis) -> None:
    assert error_pointers(api.put("/recipients/a%20b/profile", json={"attributes": {"a": 1}})) == [
        ("/recipient_id", "recipient_id")
    ]
    assert error_pointers(api.get("/recipients/a%20b/profile")) == [
        ("/recipient_id", "recipient_id")
    ]
    assert error_pointers(api.get(f"/recipients/{'x' * 129}/scores")) == [
        ("/recipient_id", "recipient_id")
    ]
    assert redis_contents(redis_client, "blanco:rcp:*") == {}


# scores


def test_put_scores_takes_bare_numbers_and_records(api: AdminApi) -> None:
    response = api.put(
        SCORES,
        json={
            "computed_at": "2026-11-23T06:00:00Z",  # for the scores without their own
            "scores": {
                "travel": 0.8,
                "churn": {
                    "value": 0.1,
                    "model_version": "v7",
                    "computed_at": "2026-11-01T00:00:00Z",
                },
            },
        },
    )
    assert response.status_code == 200
    document = response.get_json()
    assert document["recipient_id"] == "anna"
    assert list(document["scores"]) == ["churn", "travel"]
    assert document["scores"]["churn"] == {
        "value": 0.1,
        "model_version": "v7",
        "computed_at": "2026-11-01T00:00:00Z",
    }
    assert document["scores"]["travel"]["value"] == 0.8
    assert document["scores"]["travel"]["computed_at"] == "2026-11-23T06:00:00Z"  # the row's
    assert api.get(SCORES).get_json() == document


def test_scores_of_other_models_stay(api: AdminApi) -> None:
    api.put(
        SCORES,
        json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": 0.8, "churn": 0.3}},
    )
    document = api.put(
        SCORES, json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": 0.2, "ltv": 120}}
    ).get_json()
    assert {name: s["value"] for name, s in document["scores"].items()} == {
        "churn": 0.3,
        "ltv": 120.0,
        "travel": 0.2,
    }


def test_unknown_scores_are_not_found(api: AdminApi) -> None:
    api.put(PROFILE, json={"attributes": {"a": 1}})
    problem(api.get(SCORES), 404)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"computed_at": "2026-11-23T06:00:00Z", "scores": {}}, "/scores"),
        ({}, "/scores"),
        (
            {"computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": {"value": "high"}}},
            "/scores/travel/value",
        ),
        (
            {
                "computed_at": "2026-11-23T06:00:00Z",
                "scores": {"travel": {"value": 1, "computed_at": "2026-11-01T00:00:00"}},
            },
            "/scores/travel/computed_at",
        ),
        (
            {
                "computed_at": "2026-11-23T06:00:00Z",
                "scores": {"travel": {"value": 1, "model": "v2"}},
            },
            "/scores/travel/model",
        ),
        (
            {"recipient_id": "bob", "computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": 1}},
            "/recipient_id",
        ),
    ],
)
def test_invalid_scores_point_at_the_field(
    api: AdminApi, redis_client: redis.Redis, body: dict[str, Any], pointer: str
) -> None:
    assert [p for p, _ in error_pointers(api.put(SCORES, json=body))] == [pointer]
    assert redis_contents(redis_client, "blanco:rcp:*") == {}


# bulk


def test_bulk_profiles_store_good_lines_and_report_bad_ones(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    body = jsonl(
        {"recipient_id": "anna", "attributes": {"first_name": "Anna"}, "segments": ["loyal"]},
        '{"recipient_id": "bram", "attributes": ',
        {"recipient_id": "chloe", "attributes": {"first_name": "Chloé"}},
        "",
        {"recipient_id": "not valid!", "attributes": {"first_name": "X"}},
        {"recipient_id": "daan", "attributes": {"first_name": "Daan"}, "updated_at": "soon"},
        {"recipient_id": "eva"},
        {"recipient_id": "finn", "attributes": {"Name": "Finn"}},
    )
    response = api.post("/profiles/bulk", data=body, content_type=NDJSON)
    assert response.status_code == 200
    report = response.get_json()
    assert report["received"] == 7
    assert report["stored"] == 3
    assert report["rejected"] == 4
    errors = report["errors"]
    assert [(e["line"], e["pointer"]) for e in errors] == [
        (2, ""),
        (5, "/recipient_id"),
        (6, "/updated_at"),
        (8, "/attributes/Name"),
    ]
    assert errors[0]["detail"] == "not valid JSON"
    assert all(e["detail"] for e in errors)
    assert api.get("/recipients/anna/profile").get_json()["segments"] == ["loyal"]
    assert api.get("/recipients/chloe/profile").get_json()["attributes"] == {"first_name": "Chloé"}
    assert api.get("/recipients/eva/profile").get_json()["attributes"] == {}
    problem(api.get("/recipients/bram/profile"), 404)
    problem(api.get("/recipients/daan/profile"), 404)
    stored = {
        key.split("{r:")[1].split("}")[0] for key in redis_contents(redis_client, "blanco:rcp:*")
    }
    assert stored == {"anna", "chloe", "eva"}


def test_bulk_scores_store_good_lines_and_report_bad_ones(api: AdminApi) -> None:
    body = jsonl(
        {"recipient_id": "anna", "computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": 0.9}},
        {
            "recipient_id": "bram",
            "computed_at": "2026-11-23T06:00:00Z",
            "scores": {"travel": {"value": "lots"}},
        },
        "[1, 2, 3]",
        "not json at all",
        {
            "recipient_id": "chloe",
            "computed_at": "2026-11-23T06:00:00Z",
            "scores": {"travel": {"value": 0.2, "model_version": "v3"}},
        },
    )
    response = api.post("/scores/bulk", data=body, content_type=NDJSON)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (5, 2, 3)
    assert [(e["line"], e["pointer"]) for e in report["errors"]] == [
        (2, "/scores/travel/value"),
        (3, ""),
        (4, ""),
    ]
    assert report["errors"][2]["detail"] == "not valid JSON"
    assert api.get("/recipients/anna/scores").get_json()["scores"]["travel"]["value"] == 0.9
    assert (
        api.get("/recipients/chloe/scores").get_json()["scores"]["travel"]["model_version"] == "v3"
    )
    problem(api.get("/recipients/bram/scores"), 404)


def test_bulk_is_idempotent(api: AdminApi, redis_client: redis.Redis) -> None:
    rows = [
        {
            "recipient_id": f"r{n}",
            "attributes": {"n": n, "drop": None},
            "segments": [f"s{n % 3}"],
            "updated_at": "2026-11-20T00:00:00Z",
        }
        for n in range(20)
    ]
    states = []
    for _ in range(2):
        response = api.post("/profiles/bulk", data=jsonl(*rows), content_type=NDJSON)
        assert response.get_json() == {
            "received": 20,
            "stored": 20,
            "rejected": 0,
            "error_kinds": [],
            "errors": [],
        }
        states.append(redis_contents(redis_client, "blanco:rcp:*"))
    once, twice = states
    assert twice == once
    assert len(once) == 40  # a profile and a segment set each


def test_bulk_handles_more_rows_than_one_chunk(api: AdminApi, redis_client: redis.Redis) -> None:
    rows = [
        {"recipient_id": f"r{n}", "computed_at": "2026-11-23T06:00:00Z", "scores": {"m": n / 10000}}
        for n in range(2500)
    ]
    rows[1234] = {
        "recipient_id": "r1234",
        "computed_at": "2026-11-23T06:00:00Z",
        "scores": {"m": None},
    }
    response = api.post("/scores/bulk", data=jsonl(*rows), content_type=NDJSON)
    report = response.get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (2500, 2499, 1)
    assert report["errors"][0]["line"] == 1235
    assert len(list(redis_client.scan_iter(match="*:scores", count=1000))) == 2499
    assert api.get("/recipients/r2499/scores").get_json()["scores"]["m"]["value"] == 0.2499


@pytest.mark.parametrize("content_type", ["application/jsonl", "application/json-lines", NDJSON])
def test_bulk_accepts_json_lines_types(api: AdminApi, content_type: str) -> None:
    body = jsonl({"recipient_id": "anna", "attributes": {"a": 1}})
    response = api.post("/profiles/bulk", data=body, content_type=content_type)
    assert response.get_json()["stored"] == 1


@pytest.mark.parametrize("path", ["/profiles/bulk", "/scores/bulk"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/csv"])
def test_bulk_with_another_type_is_unsupported(
    api: AdminApi, redis_client: redis.Redis, path: str, content_type: str
) -> None:
    body = jsonl({"recipient_id": "anna", "attributes": {"a": 1}, "scores": {"m": 1}})
    problem(api.post(path, data=body, content_type=content_type), 415)
    assert redis_contents(redis_client, "blanco:rcp:*") == {}


def test_bulk_without_a_body_stores_nothing(api: AdminApi) -> None:
    response = api.post("/profiles/bulk", data=b"", content_type=NDJSON)
    assert response.get_json() == {
        "received": 0,
        "stored": 0,
        "rejected": 0,
        "error_kinds": [],
        "errors": [],
    }


# tokens


def test_token_is_verified_by_the_signer(api: AdminApi) -> None:
    response = api.get("/recipients/anna@example.com/token")
    assert response.status_code == 200
    document = response.get_json()
    assert document["recipient_id"] == "anna@example.com"
    assert TokenSigner([SIGNING_KEY]).verify(document["token"]) == "anna@example.com"
    assert TokenSigner(["another-key-" + "0" * 40]).verify(document["token"]) is None
    tampered = document["token"].replace("anna@", "bram@")
    assert TokenSigner([SIGNING_KEY]).verify(tampered) is None


def test_token_needs_no_stored_data_and_stores_none(
    api: AdminApi, redis_client: redis.Redis
) -> None:
    assert api.get("/recipients/ghost/token").status_code == 200
    assert recipient_state(redis_client, "ghost") == {}


def test_token_for_an_invalid_id_is_refused(api: AdminApi) -> None:
    assert error_pointers(api.get("/recipients/bad%20id/token")) == [
        ("/recipient_id", "recipient_id")
    ]


# erasure and TTLs


def _everything_about(services: Services, client: FlaskClient, recipient_id: str) -> None:
    """Store a profile, segments, scores and a decision for ``recipient_id``."""
    store_recipient(services, recipient_id, {"first_name": "X"}, {"travel": 0.9}, ["loyal"])
    token = services.signer.sign(recipient_id)
    assert client.get("/i/daily/hero.png", query_string={"r": token}).status_code == 200


def test_erase_removes_every_key_of_the_recipient(
    api: AdminApi, client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_block(services, [variant("hot", {"score": "travel", "gte": 0.5})])
    _everything_about(services, client, "anna")
    _everything_about(services, client, "bram")
    stored = set(recipient_state(redis_client, "anna"))
    assert {keys.profile("anna"), keys.scores("anna"), keys.segments("anna")} <= stored
    assert keys.decisions("anna") in stored
    response = api.delete("/recipients/anna")
    assert response.status_code == 204
    assert response.data == b""
    assert list(redis_client.scan_iter(match="*anna*", count=1000)) == []
    problem(api.get(PROFILE), 404)
    problem(api.get(SCORES), 404)
    assert set(recipient_state(redis_client, "bram")) == {
        key.replace("anna", "bram") for key in stored
    }
    assert api.get("/campaigns/daily/blocks/hero").status_code == 200


def test_erasing_an_unknown_recipient_succeeds(api: AdminApi) -> None:
    assert api.delete("/recipients/nobody").status_code == 204


def test_erase_refuses_an_invalid_id(api: AdminApi) -> None:
    problem(api.delete("/recipients/a%20b"), 422)


def test_recipient_keys_have_ttls(
    api: AdminApi, client: FlaskClient, services: Services, redis_client: redis.Redis
) -> None:
    store_block(services, [variant("hot", {"score": "travel", "gte": 0.5})])
    api.put(PROFILE, json={"attributes": {"first_name": "Anna"}, "segments": ["loyal"]})
    api.put(SCORES, json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"travel": 0.9}})
    api.post(
        "/profiles/bulk",
        data=jsonl({"recipient_id": "bram", "attributes": {"a": 1}, "segments": ["x"]}),
        content_type=NDJSON,
    )
    api.post(
        "/scores/bulk",
        data=jsonl(
            {"recipient_id": "bram", "computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 1}}
        ),
        content_type=NDJSON,
    )
    token = services.signer.sign("anna")
    assert client.get("/i/daily/hero.png", query_string={"r": token}).status_code == 200
    recipient_keys = [
        *redis_client.scan_iter(match="*{r:anna}*", count=1000),
        *redis_client.scan_iter(match="*{r:bram}*", count=1000),
    ]
    assert len(recipient_keys) >= 7  # profile, segments and scores of each; Anna's decision
    for key in recipient_keys:
        assert redis_client.ttl(key) > 0, key
    settings = services.settings
    for key in (keys.profile("anna"), keys.segments("bram"), keys.scores("bram")):
        assert 0 < redis_client.ttl(key) <= settings.profile_ttl_seconds
    assert 0 < redis_client.ttl(keys.decisions("anna")) <= settings.decision_ttl_seconds


def test_a_later_upsert_renews_the_ttl(
    api: AdminApi, redis_client: redis.Redis, services: Services
) -> None:
    api.put(PROFILE, json={"attributes": {"a": 1}})
    redis_client.expire(keys.profile("anna"), 60)
    api.put(PROFILE, json={"attributes": {"b": 2}})
    assert redis_client.ttl(keys.profile("anna")) > 60
    api.put(SCORES, json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"m": 1}})
    redis_client.expire(keys.scores("anna"), 60)
    api.put(SCORES, json={"computed_at": "2026-11-23T06:00:00Z", "scores": {"n": 1}})
    assert redis_client.ttl(keys.scores("anna")) > 60
