"""The OpenAPI document at /api/v1/openapi.json matches the routes the app serves."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import AdminApi, problem

PREFIX = "/api/v1"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The served document, parsed from its bytes."""
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    parsed: dict[str, Any] = json.loads(response.get_data(as_text=True))
    return parsed


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation in the document."""
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def openapi_path(rule: str) -> str:
    """A Flask rule in OpenAPI form: ``<int:version>`` becomes ``{version}``."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` names; KeyError if there is none."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    """Every ``$ref`` value inside ``node``."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for key, value in node.items() if key != "$ref" for r in refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


def test_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"]
    assert document["info"]["version"] == "1"
    assert document["paths"]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_every_route_is_documented_and_every_operation_routed(
    app: Flask, document: dict[str, Any]
) -> None:
    served = {
        (method.lower(), openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert served - documented == set()
    assert documented - served == set()
    assert len(served) > 25


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = refs(document)
    assert found
    for ref in found:
        target = resolve(document, ref)
        assert isinstance(target, dict), ref


def test_every_schema_is_used(document: dict[str, Any]) -> None:
    used = {ref.rsplit("/", 1)[1] for ref in refs(document)}
    assert set(document["components"]["schemas"]) == used


def test_operations_that_take_a_body_describe_it(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if method in ("put", "post"):
            body = operation.get("requestBody")
            assert body is not None, (method, path)
            assert body["required"] is True
            assert body["content"], (method, path)
            for content in body["content"].values():
                schema = content["schema"]
                if "$ref" in schema:
                    schema = resolve(document, schema["$ref"])
                assert schema["type"] == "object", (method, path)
                assert schema["properties"], (method, path)
        else:
            assert "requestBody" not in operation, (method, path)
    bulk = document["paths"][f"{PREFIX}/profiles/bulk"]["post"]["requestBody"]["content"]
    assert bulk["application/x-ndjson"] == {
        "schema": {"$ref": "#/components/schemas/ProfileUpsert"}
    }
    assert set(bulk) == {"application/x-ndjson", "text/csv"}
    assert bulk["text/csv"]["schema"]["required"] == ["recipient_id"]
    block = document["paths"][f"{PREFIX}/campaigns/{{campaign_id}}/blocks"]["post"]
    assert block["requestBody"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/BlockSpec"}}
    }


def reachable(document: dict[str, Any], name: str) -> set[str]:
    """Names of the schemas that schema ``name`` refers to, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for ref in refs(document["components"]["schemas"][todo.pop()]):
            found = ref.rsplit("/", 1)[1]
            if found not in seen:
                seen.add(found)
                todo.append(found)
    return seen


def test_block_schema_reaches_conditions_and_content(document: dict[str, Any]) -> None:
    assert {"id", "fallback"} <= set(document["components"]["schemas"]["BlockSpec"]["required"])
    assert {
        "Variant",
        "FallbackContent",
        "AllOf",
        "Not",
        "ScoreCondition",
        "TimeWindow",
        "BannerParams",
        "TextLine",
    } <= reachable(document, "BlockSpec")


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        in_path = re.findall(r"{(\w+)}", path)
        declared = [p for p in operation.get("parameters", []) if p["in"] == "path"]
        assert [p["name"] for p in declared] == in_path, (method, path)
        assert all(p["required"] is True for p in declared)
    version = document["paths"][
        f"{PREFIX}/campaigns/{{campaign_id}}/blocks/{{block_id}}/versions/{{version}}"
    ]
    types = {p["name"]: p["schema"]["type"] for p in version["get"]["parameters"]}
    assert types == {"campaign_id": "string", "block_id": "string", "version": "integer"}


def test_query_parameters_of_previews(document: dict[str, Any]) -> None:
    block = f"{PREFIX}/campaigns/{{campaign_id}}/blocks/{{block_id}}"
    for what in ("decision", "preview"):
        query = {
            p["name"]: p["required"]
            for p in document["paths"][f"{block}/{what}"]["get"]["parameters"]
            if p["in"] == "query"
        }
        assert query == {"recipient_id": True, "at": False, "user_agent": False}
    preview = document["paths"][f"{block}/preview"]["get"]["responses"]["200"]
    assert set(preview["content"]) == {"image/png"}


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


def test_responses_are_described(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        codes = set(operation["responses"])
        successes = {c for c in codes if c.startswith("2")}
        assert len(successes) == 1 or (method, path, successes) == (
            "post",
            f"{PREFIX}/assets",
            {"200", "201"},  # 200: the same bytes were uploaded before
        ), (method, path)
        for success in successes:
            if success == "204":
                assert "content" not in operation["responses"][success]
        for code in codes - successes:
            content = operation["responses"][code]["content"]
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        if path == f"{PREFIX}/openapi.json":
            assert "security" not in operation
        else:
            assert operation["security"] == [{"apiKey": []}], (method, path)
            assert {"401", "403", "503"} <= codes, (method, path)


def test_problem_schema_matches_a_real_problem(
    client: FlaskClient, admin_headers: dict[str, str], document: dict[str, Any]
) -> None:
    schema = document["components"]["schemas"]["Problem"]
    api = AdminApi(client, admin_headers)
    body = problem(api.post("/campaigns", json={"id": "Not A Slug"}), 422)
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    item = schema["properties"]["errors"]["items"]["properties"]
    for error in body["errors"]:
        assert set(error) == set(item)


def _body_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, operation in operations(document)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def test_refused_bodies_answer_documented_statuses(
    client: FlaskClient, admin_headers: dict[str, str], document: dict[str, Any]
) -> None:
    api = AdminApi(client, admin_headers)
    checked = 0
    for method, path in _body_operations(document):
        url = re.sub(r"{\w+}", "x", path).removeprefix(PREFIX)
        responses = document["paths"][path][method]["responses"]
        wrong_type = api.request(method.upper(), url, data="x", content_type="text/plain")
        problem(wrong_type, 415)
        assert "415" in responses, (method, path)
        not_an_object = api.request(method.upper(), url, json=[1])
        problem(not_an_object, 422)
        assert "422" in responses, (method, path)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("path", "schema_name"),
    [
        ("/campaigns/daily", "Campaign"),
        ("/campaigns/daily/blocks/hero", "Block"),
        ("/campaigns/daily/blocks/hero/variants/a", "Variant"),
        ("/campaigns/daily/blocks/hero/decision?recipient_id=anna", "DecisionExplanation"),
        ("/campaigns/daily/blocks/hero/urls?recipient_id=anna", "RecipientUrls"),
        ("/recipients/anna/token", "TokenAnswer"),
    ],
)
def test_responses_match_their_schemas(
    client: FlaskClient,
    admin_headers: dict[str, str],
    document: dict[str, Any],
    path: str,
    schema_name: str,
) -> None:
    api = AdminApi(client, admin_headers)
    api.post("/campaigns", json={"id": "daily"})
    block = {
        "id": "hero",
        "fallback": {
            "content": {"type": "banner", "lines": [{"text": "Hi"}]},
            "target_url": "https://shop.example/",
        },
        "variants": [
            {
                "id": "a",
                "when": {"segment": "vip"},
                "content": {"type": "banner", "lines": [{"text": "Hi"}]},
                "target_url": "https://shop.example/a",
            }
        ],
    }
    assert api.post("/campaigns/daily/blocks", json=block).status_code == 201
    response = api.get(path)
    assert response.status_code == 200
    body = response.get_json()
    schema = document["components"]["schemas"][schema_name]
    assert set(schema.get("required", [])) <= set(body), schema_name
    assert set(body) <= set(schema["properties"]), schema_name
