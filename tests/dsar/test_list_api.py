"""``GET /api/v1/requests/``: cursor pages (stable under inserts, both directions), filters,
count; ``external_reference`` set at opening."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from compliance.dsar.models import PrivacyRequest
from tests.dsar.helpers import api_client, open_body, post_open
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _open(http, n: int, *, jurisdiction: str = "FR", **extra) -> list[str]:
    ids = []
    for i in range(n):
        email = f"list{i}-{jurisdiction}-{timezone.now().timestamp()}@example.org"
        SubjectFactory(email=email, jurisdiction=jurisdiction) if jurisdiction != "US-CA" else None
        body = open_body(email, type="access", jurisdiction=jurisdiction, **extra)
        response = post_open(http, body)
        assert response.status_code == 201, response.json()
        ids.append(response.json()["id"])
    return ids


def _follow(http, url: str) -> dict:
    parts = urlsplit(url)
    return http.get(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}).json()


def test_cursor_pages_cover_every_request_once_across_regions_and_survive_inserts():
    _, http = api_client()
    ids = _open(http, 3, jurisdiction="FR") + _open(http, 2, jurisdiction="US-CA")
    first = http.get("/api/v1/requests/", {"limit": 2}).json()
    assert first["count"] == 5 and first["previous"] is None and first["next"]
    seen = [r["id"] for r in first["results"]]
    inserted = _open(http, 1)  # a new request while paging: it appears on page one only
    page = first
    while page["next"]:
        page = _follow(http, page["next"])
        seen += [r["id"] for r in page["results"]]
        assert page["previous"]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    back = _follow(http, page["previous"])
    assert [r["id"] for r in back["results"]] == seen[-3:-1]
    fresh = http.get("/api/v1/requests/", {"limit": 1}).json()
    assert [r["id"] for r in fresh["results"]] == inserted and fresh["count"] == 6


def test_filters_by_status_type_regulation_dates_and_external_reference():
    _, http = api_client()
    [mine] = _open(http, 1, external_reference="TICKET-42")
    _open(http, 2)
    listed = http.get("/api/v1/requests/", {"external_reference": "TICKET-42"}).json()
    assert [r["id"] for r in listed["results"]] == [mine] and listed["count"] == 1
    assert listed["results"][0]["external_reference"] == "TICKET-42"
    now = timezone.now()
    request = PrivacyRequest.objects.using("eu").get(pk=mine)
    PrivacyRequest.objects.using("eu").filter(pk=mine).update(
        received_at=now - timedelta(days=10), due_at=now + timedelta(days=2)
    )
    old = http.get(
        "/api/v1/requests/", {"created_before": (now - timedelta(days=5)).isoformat()}
    ).json()
    assert [r["id"] for r in old["results"]] == [mine]
    due_soon = http.get(
        "/api/v1/requests/",
        {"due_after": now.isoformat(), "due_before": (now + timedelta(days=3)).isoformat()},
    ).json()
    assert [r["id"] for r in due_soon["results"]] == [mine]
    recent = http.get("/api/v1/requests/", {"created_after": (now - timedelta(days=1)).isoformat()})
    assert recent.json()["count"] == 2
    assert http.get("/api/v1/requests/", {"regulation": "ccpa"}).json()["count"] == 0
    assert http.get("/api/v1/requests/", {"type": "access"}).json()["count"] == 3
    assert http.get("/api/v1/requests/", {"status": request.status}).json()["count"] >= 1


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJ2IjpbIngiLCJ5Il0sImIiOjB9"},  # {"v":["x","y"],"b":0}
        {"limit": "0"},
        {"created_after": "2026-13-01T00:00:00Z"},
        {"due_before": "2026-01-01T00:00:00+16:39"},
        {"due_after": "2026-01-01T00:00:00"},
        {"regulation": "hammurabi"},
    ],
)
def test_bad_list_parameters_are_400(params):
    _, http = api_client()
    response = http.get("/api/v1/requests/", params)
    assert response.status_code == 400
    assert set(params) & set(response.json()["error"]["fields"])
