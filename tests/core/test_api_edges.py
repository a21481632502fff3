"""Every answer under /api/ is JSON in the one envelope: hostile input, unknown routes and
objects, wrong methods, oversized and non-JSON bodies, throttling. Nothing is written."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.apps import apps
from django.db import router
from django.test import override_settings
from django.urls import get_resolver
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.api.inputs import MAX_BODY_BYTES
from compliance.api.scopes import SCOPES
from compliance.api.throttling import ClientRateThrottle
from compliance.models import ApiClient
from compliance.roles import PRIVACY_OFFICER
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")

DEEP = "[" * 100_000 + "]" * 100_000


def _counts() -> dict[tuple[str, str], int]:
    """Rows of every table in every database (API clients aside: their ``last_used_at``)."""
    from django.conf import settings

    out = {}
    for model in apps.get_models():
        if model is ApiClient or model._meta.proxy:
            continue
        for alias in settings.DATABASES:
            if router.allow_migrate_model(alias, model):
                out[(alias, model._meta.label)] = model.objects.using(alias).count()
    return out


@pytest.fixture
def everything():
    """A client holding every scope, acting as a privacy officer."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("officer-all", is_staff=True)
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    token = "ctk_everything_token"
    ApiClient.objects.create(
        name="everything", token_hash=token_hash(token), scopes=list(SCOPES), user=user
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def assert_envelope(response, status: int, *, field: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert field in error["fields"], error
    return error


def api_routes() -> list[tuple[str, object]]:
    """(path with unknown ids filled in, view class) of every route under /api/v1/."""
    out = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/v1/") or route.startswith("api/v1/^"):
                out.append((route, pattern.callback.view_class))

    walk(get_resolver().url_patterns)
    paths = []
    for route, view in out:
        path = route.replace("^", "").replace("$", "").replace("/?", "/")
        path = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), path)
        path = re.sub(r"<slug:\w+>", "no-such-thing", path)
        path = re.sub(r"\(\?P<key>[^)]*\)", "no-such-thing", path)
        path = re.sub(r"\(\?P<subject_id>[^)]*\)", str(uuid.uuid4()), path)
        paths.append(("/" + path, view))
    return paths


def test_route_walk_finds_every_route():
    routes = api_routes()
    assert len(routes) >= 25
    assert all("<" not in path and "(" not in path for path, _ in routes)


def test_every_route_answers_json_for_unknown_ids_and_wrong_methods(everything):
    before = _counts()
    for path, view in api_routes():
        allowed = {m.upper() for m in view.http_method_names if hasattr(view, m)}
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            response = getattr(everything, method.lower())(path, {}, format="json")
            assert response["Content-Type"].startswith("application/json"), (method, path)
            assert response.status_code < 500, (method, path, response.content[:300])
            if method not in allowed:
                assert_envelope(response, 405)
                assert method not in response["Allow"] and response["Allow"], (method, path)
            elif response.status_code >= 400:
                assert_envelope(response, response.status_code)
    assert _counts() == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/requests/nope/", 404),
        ("post", "/api/v1/requests/0/cancel/", 404),
        ("get", "/api/nothing-here", 404),
        ("get", "/api/v2/requests/", 404),
        ("delete", "/api/v1/requests", 404),
        ("delete", "/api/v1/requests/", 405),
        ("get", f"/api/v1/requests/{uuid.uuid4()}/approve/", 405),
        ("get", f"/api/v1/requests/{uuid.uuid4()}/", 404),
        ("get", "/api/v1/segments/no-such-segment/", 404),
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_routes_and_wrong_methods(everything, method, path, status, debug):
    with override_settings(DEBUG=debug):
        response = getattr(everything, method)(path)
    error = assert_envelope(response, status)
    assert "urlpatterns" not in response.content.decode()
    if status == 405:
        assert error["code"] == "method_not_allowed"
        assert "POST" in response["Allow"] or "GET" in response["Allow"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_schema_and_docs_pages_answer_wrong_methods_in_json(client, path, method):
    response = getattr(client, method)(path)
    assert_envelope(response, 405)
    assert response["Allow"] == "GET, HEAD"


def test_unknown_route_without_token_is_still_a_json_404():
    assert_envelope(APIClient().get("/api/v1/nope/"), 404)


def test_handler404_answers_json_under_api_and_html_elsewhere(rf):
    from compliance.api.errors import page_not_found, server_error

    assert page_not_found(rf.get("/api/v1/x"))["Content-Type"] == "application/json"
    assert server_error(rf.get("/api/v1/x")).status_code == 500
    assert "json" not in page_not_found(rf.get("/elsewhere"))["Content-Type"]


def _json_post_routes() -> list[str]:
    return [path for path, view in api_routes() if hasattr(view, "post")]


def test_deep_json_is_400_on_every_json_post(everything):
    before = _counts()
    routes = _json_post_routes()
    assert len(routes) >= 10
    for path in routes:
        response = everything.post(
            path, DEEP, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert_envelope(response, 400, field="body")
    # deeper than the documented limit but shallow enough for the decoder
    nested = "[" * 40 + "]" * 40
    response = everything.post("/api/v1/consents/", nested, content_type="application/json")
    assert assert_envelope(response, 400)["code"] == "too_deep"
    assert _counts() == before


@pytest.mark.parametrize("field", ["source", "purpose"])
def test_nul_in_event_fields_is_400_naming_the_field(everything, field):
    before = _counts()
    body = {
        "events": [
            {
                "source": "web",
                "purpose": "measurement",
                "event": "page_view",
                "identifiers": [{"type": "email", "value": "a@example.org"}],
                "time": "2026-01-01T00:00:00Z",
                "jurisdiction": "FR",
            }
        ]
    }
    body["events"][0][field] = "we\x00b"
    response = everything.post("/api/v1/events/", body, format="json")
    assert_envelope(response, 400, field=f"events[0].{field}")
    assert _counts() == before


def test_control_characters_in_consent_body_are_refused(everything):
    before = _counts()
    body = {
        "identifier": {"type": "email", "value": "x\x07@example.org"},
        "jurisdiction": "FR",
        "source": "web",
        "decisions": [{"purpose": "measurement", "decision": "granted"}],
    }
    response = everything.post("/api/v1/consents/", body, format="json")
    assert_envelope(response, 400, field="identifier.value")
    assert _counts() == before


def test_lone_surrogate_in_json_is_400_naming_the_field(everything):
    body = '{"identifier": {"type": "email", "value": "a\\ud800@example.org"}}'
    response = everything.post("/api/v1/consents/", body, content_type="application/json")
    assert_envelope(response, 400, field="identifier.value")


def test_nul_in_idempotency_key_is_400_naming_the_header(everything):
    before = _counts()
    body = {
        "type": "access",
        "regulation": "gdpr",
        "identifiers": [{"type": "email", "value": "a@example.org"}],
        "verification_method": "account_login",
    }
    response = everything.post(
        "/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="abc\x00def"
    )
    assert_envelope(response, 400, field="Idempotency-Key")
    assert _counts() == before


def test_nul_in_query_parameter_is_400_naming_it(everything):
    response = everything.get("/api/v1/requests/", {"status": "rec\x00eived"})
    assert_envelope(response, 400, field="status")


@pytest.mark.parametrize(
    "at", ["2026-13-01T00:00:00Z", "2026-01-01T00:00:00+16:39", "2026-02-30T00:00:00Z", "soon"]
)
def test_bad_times_on_member_history_are_400(everything, at):
    from segments.models import Segment

    Segment.objects.create(key="buyers", name="Buyers", layers=["behavioral"])
    subject = SubjectFactory(jurisdiction="FR")
    response = everything.get(f"/api/v1/segments/buyers/members/{subject.pk}/history/", {"at": at})
    assert_envelope(response, 400, field="at")


def test_body_over_the_limit_is_413(everything):
    before = _counts()
    body = '{"x": "' + "a" * MAX_BODY_BYTES + '"}'
    response = everything.post("/api/v1/consents/", body, content_type="application/json")
    assert assert_envelope(response, 413)["code"] == "too_large"
    assert _counts() == before


def test_non_json_body_is_415(everything):
    before = _counts()
    response = everything.post("/api/v1/consents/", "source=web", content_type="text/plain")
    assert assert_envelope(response, 415)["code"] == "unsupported_media_type"
    response = everything.post(
        f"/api/v1/requests/{uuid.uuid4()}/cancel/", "x", content_type="application/xml"
    )
    assert_envelope(response, 415)
    assert _counts() == before


@pytest.mark.parametrize("body", ["{nope", '{"decisions": NaN}', '{"x": Infinity}', "\xff"])
def test_malformed_json_is_400(everything, body):
    response = everything.post("/api/v1/consents/", body, content_type="application/json")
    assert assert_envelope(response, 400)["code"] == "parse_error"


def test_throttled_is_429_with_retry_after(everything, monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/min"})
    for _ in range(2):
        assert everything.get("/api/v1/segments/").status_code == 200
    response = everything.get("/api/v1/segments/")
    assert assert_envelope(response, 429)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    cache.clear()


def test_every_api_view_has_the_edge_checks():
    from compliance.api.views import ApiEdgeMixin

    for path, view in api_routes():
        assert issubclass(view, ApiEdgeMixin), path


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "del\x7f"}',  # DEL may come raw: the quick path must not skip it
        '{"a": "del\\u007f"}',
        '{"a": ["nul\\u0000"]}',
        '{"k\\u0001": 1}',
        '{"a": "\\ud800"}',
        "[" * 33 + "]" * 33,
        '{"a": ' * 33 + "1" + "}" * 33,
    ],
)
def test_the_quick_json_check_refuses_what_the_full_walk_refuses(text):
    from compliance.api.inputs import json_check
    from compliance.errors import InputError

    data = json.loads(text)
    with pytest.raises(InputError) as full:
        json_check(data)
    with pytest.raises(InputError) as quick:
        json_check(data, text=text)
    assert quick.value.fields == full.value.fields


def test_the_quick_json_check_accepts_the_deepest_allowed():
    from compliance.api.inputs import json_check

    for text in ["[" * 32 + "]" * 32, '{"events": [{"a": "caf\u00e9 \\\\u"}]}']:
        json_check(json.loads(text), text=text)
