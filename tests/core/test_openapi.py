"""The OpenAPI schema builds without warnings and documents every API route we serve."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from django.urls import get_resolver

pytestmark = pytest.mark.django_db(databases="__all__")


def api_routes() -> set[str]:
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/v1/"):
                routes.add(route)

    walk(get_resolver().url_patterns)
    return routes


def test_schema_validates_without_warnings_and_covers_every_route(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    schema = yaml.safe_load(out.read_text())
    documented = set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert len(api_routes()) >= 20
    for route in api_routes():
        # "api/v1/requests/<uuid:request_id>/" -> "/api/v1/requests/{request_id}/"
        parts = []
        for part in route.split("/"):
            if part.startswith("<"):
                part = "{" + part.strip("<>").split(":")[-1] + "}"
            parts.append(part)
        path = "/" + "/".join(parts)
        if "(?P<" in route:  # regex routes: "^segments/(?P<key>...)/..." -> "/api/v1/segments/"
            path = path.split("(?P<")[0].replace("^", "")
            assert any(p.startswith(path) for p in documented), route
        else:
            assert path in documented, route
    for operation in (op for item in schema["paths"].values() for op in item.values()):
        assert operation.get("security") != [{}], "every operation requires authentication"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_schema_passes_openapi_spec_validator(schema):
    import json

    from openapi_spec_validator import validate

    validate(json.loads(json.dumps(schema, default=str)))


def test_every_operation_has_summary_area_tag_scope_and_error_answers(schema):
    from compliance.api.scopes import SCOPES

    areas = {"consent", "events", "segments", "requests", "feed", "signals"}
    seen_tags = set()
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert len(operation["tags"]) == 1 and operation["tags"][0] in areas, where
        seen_tags.add(operation["tags"][0])
        [requirement] = operation["security"]
        [scope] = requirement["bearerAuth"]
        assert scope in SCOPES, where
        for code in ("400", "401", "403", "404", "405", "413", "415", "429"):
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, where
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "Allow" in operation["responses"]["405"]["headers"]
    assert seen_tags == areas
    approve = schema["paths"]["/api/v1/requests/{request_id}/approve/"]["post"]
    assert approve["security"] == [{"bearerAuth": ["dsar:approve"]}]
    assert "Privacy officer" in approve["description"]
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]


def test_callback_and_webhook_are_documented_with_signature_headers(schema):
    opening = schema["paths"]["/api/v1/requests/"]["post"]
    callback = opening["callbacks"]["statusCallback"]["{$request.body#/callback_url}"]["post"]
    webhook = schema["webhooks"]["changeBatch"]["post"]
    for operation in (callback, webhook):
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert {
            "X-Compliance-Event-Id",
            "X-Compliance-Attempt",
            "X-Compliance-Timestamp",
            "X-Compliance-Signature",
        } <= headers
        assert "hmac.compare_digest" in operation["description"]
    payload = schema["components"]["schemas"]["DsarCallback"]
    assert {"event_id", "attempt"} <= set(payload["required"])


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_are_served_from_the_project_without_a_cdn(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assert "cdn." not in html and "jsdelivr" not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/" in html


def test_links_lead_from_what_a_post_creates_to_what_reads_it(schema):
    opened = schema["paths"]["/api/v1/requests/"]["post"]["responses"]["201"]["links"]
    detail = schema["paths"]["/api/v1/requests/{request_id}/"]["get"]["operationId"]
    assert opened["GetRequest"] == {
        "operationId": detail,
        "parameters": {"request_id": "$response.body#/id"},
    }
    assert "ListCallbacks" in opened
    assert "GetSegment" in schema["paths"]["/api/v1/segments/"]["post"]["responses"]["201"]["links"]
