"""GET /api/v1/changes/: per region, opaque cursor, paginated, scope changes:read."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.feed.services.outbox import ChangeInput, changes_record
from compliance.models import ApiClient
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def client(scopes=("changes:read",)) -> APIClient:
    ApiClient.objects.create(
        name=f"c-{'-'.join(scopes) or 'none'}",
        token_prefix="t",
        token_hash=token_hash("tok" + "".join(scopes)),
        scopes=list(scopes),
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer tok" + "".join(scopes))
    return api


def seed(n: int, region: str = "eu"):
    person = SubjectFactory(jurisdiction="FR" if region == "eu" else "US-CA")
    with transaction.atomic(using=region):
        changes_record(
            using=region,
            changes=[
                ChangeInput("enter", person.pk, timezone.now(), segment_key=f"k{i}", ref_id=i)
                for i in range(n)
            ],
        )
    return person


def test_pages_through_the_region_feed_with_an_opaque_cursor():
    seed(5)
    seed(2, region="us")
    api = client()
    seen, after = [], ""
    while True:
        response = api.get("/api/v1/changes/", {"region": "eu", "after": after, "limit": 2})
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [c for c in body["changes"] if c["type"] == "enter"]
        after = body["next_cursor"]
        if not body["has_more"]:
            break
    assert [c["segment"] for c in seen] == ["k0", "k1", "k2", "k3", "k4"]
    assert all(c["region"] == "eu" for c in seen)
    assert len({c["id"] for c in seen}) == 5
    # nothing new after the last cursor
    again = api.get("/api/v1/changes/", {"region": "eu", "after": after}).json()
    assert again["changes"] == [] and again["next_cursor"] == after


def test_scope_is_required():
    response = client(scopes=("consent:read",)).get("/api/v1/changes/", {"region": "eu"})
    assert response.status_code == 403


def test_bad_cursor_and_region_name_the_field():
    seed(1)
    api = client()
    bad = api.get("/api/v1/changes/", {"region": "eu", "after": "garbage!"})
    assert bad.status_code == 400 and "after" in bad.json()["error"]["fields"]
    us_cursor = api.get("/api/v1/changes/", {"region": "us"}).json()["next_cursor"]
    other = api.get("/api/v1/changes/", {"region": "eu", "after": us_cursor})
    assert other.status_code == 400 and "region" in other.json()["error"]["message"]
    region = api.get("/api/v1/changes/", {"region": "mars"})
    assert region.status_code == 400 and "region" in region.json()["error"]["fields"]
