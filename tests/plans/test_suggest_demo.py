"""The suggest command (names and types, never values) and the demo's starter plans."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from compliance.audit.services.append import Actor
from compliance.plans.demo import load
from compliance.plans.documents import plan_document_parse
from compliance.plans.models import TrackingPlan
from tests.events.conftest import api_client, event, new_email, post
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_suggest_proposes_names_and_types_only():
    email = new_email()
    ConsentFactory(subject=SubjectFactory(jurisdiction="FR", email=email), purpose="measurement")
    post(
        api_client("events:write"),
        [
            event(email, properties={"path": "/secret-path-1", "n": 3}),
            event(email, properties={"path": "/secret-path-2", "n": 2.5, "tag": True}),
            event(email, name="signup", properties={"plan": "pro-secret"}),
        ],
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("tracking_plan_suggest", "--source", "web", "--days", "7", stdout=out, stderr=err)
    text = out.getvalue()
    for value in ("secret-path", "pro-secret", email):
        assert value not in text
    document = json.loads(text)
    plan_document_parse(data=document)  # a valid plan, ready to PUT
    page_view = next(e for e in document["events"] if e["name"] == "page_view")
    assert page_view["schema"]["properties"] == {
        "n": {"type": "number"},
        "path": {"type": "string"},
        "tag": {"type": "boolean"},
    }
    assert page_view["schema"]["required"] == ["n", "path"]
    assert [e["name"] for e in document["events"]] == ["page_view", "signup"]
    assert "3 events" in err.getvalue() or "from 3 events" in err.getvalue()


def test_demo_starter_plans_are_published_once():
    out = io.StringIO()
    load(actor=Actor.system("demo"), stdout=out)
    load(actor=Actor.system("demo"), stdout=out)
    plans = TrackingPlan.objects.order_by("source__key")
    assert [(p.source.key, p.version, p.mode) for p in plans] == [
        ("crm", 1, "flag"),
        ("ios_app", 1, "flag"),
        ("web", 1, "flag"),
    ]
    assert "unchanged" in out.getvalue()
