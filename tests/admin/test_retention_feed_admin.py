"""Admin pages of issue 8: retention rules (edited by privacy officers, dry run, last run shown)
and webhook subscriptions (configured in the admin, secret shown once)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.events.models import Event
from compliance.feed.models import Subscription
from compliance.retention.models import RetentionRule
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT

pytestmark = pytest.mark.django_db(databases="__all__")
RULES = "/admin/retention/retentionrule/"
SUBSCRIPTIONS = "/admin/feed/subscription/"


def login(client, group: str) -> User:
    user = User.objects.create_user(username=f"u-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def old_event(age_days: int) -> Event:
    return Event.objects.using("eu").create(
        subject_id=uuid.uuid4(),
        source="web",
        name="page_view",
        purpose="measurement",
        occurred_at=timezone.now() - timedelta(days=age_days),
        received_at=timezone.now(),
        properties_encrypted=b"x",
    )


def test_officer_adds_a_rule_runs_it_and_sees_the_last_run(client):
    login(client, PRIVACY_OFFICER)
    response = client.post(
        f"{RULES}add/",
        {"category": "behavioral_events", "region": "eu", "max_age_days": "30", "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RetentionRule.objects.get(category="behavioral_events", region="eu")
    assert (
        AuditEvent.objects.using("default")
        .filter(code=AuditCode.CONFIGURATION_CHANGED, object_id=str(rule.pk))
        .exists()
    )
    old, new = old_event(400), old_event(2)

    dry = client.post(RULES, {"action": "dry_run", "_selected_action": [rule.pk]}, follow=True)
    assert "would remove events.Event 1" in dry.content.decode()
    assert Event.objects.using("eu").filter(pk=old.pk).exists()

    run = client.post(RULES, {"action": "run_now", "_selected_action": [rule.pk]}, follow=True)
    assert "removed events.Event 1" in run.content.decode()
    assert list(Event.objects.using("eu").values_list("pk", flat=True)) == [new.pk]
    rule.refresh_from_db()
    assert rule.last_removed == 1 and rule.last_run_at is not None
    page = client.get(RULES).content.decode()
    assert "behavioral_events" in page or "behavioral events" in page


def test_a_rule_below_the_audit_minimum_is_refused_with_the_reason(client):
    login(client, PRIVACY_OFFICER)
    response = client.post(
        f"{RULES}add/",
        {"category": "audit_entries", "region": "eu", "max_age_days": "30", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "legal minimum" in response.content.decode()
    assert not RetentionRule.objects.exists()


@pytest.mark.parametrize("group", [AUDITOR, SUPPORT_AGENT])
def test_other_roles_cannot_add_or_run_rules(client, group):
    officer_rule = RetentionRule.objects.create(
        category="behavioral_events", region="eu", max_age_days=30
    )
    old = old_event(400)
    login(client, group)
    assert client.get(f"{RULES}add/").status_code == 403
    client.post(RULES, {"action": "run_now", "_selected_action": [officer_rule.pk]})
    assert Event.objects.using("eu").filter(pk=old.pk).exists()


def test_officer_configures_a_webhook_and_sees_the_secret_once(client):
    login(client, PRIVACY_OFFICER)
    response = client.post(
        f"{SUBSCRIPTIONS}add/",
        {
            "name": "ads",
            "url": "https://hooks.example.org/feed",
            "event_types": ["retract"],
            "segments": "eu-buyers, us-buyers",
            "is_active": "on",
        },
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200 and "not shown again" in page
    subscription = Subscription.objects.get(name="ads")
    assert subscription.secret in page  # shown this once
    assert subscription.segments == ["eu-buyers", "us-buyers"]
    assert subscription.arm == "treatment"  # the default: activation never sees control stays
    change = client.get(f"{SUBSCRIPTIONS}{subscription.pk}/change/").content.decode()
    assert subscription.secret not in change and subscription.secret_hint in change
    bad = client.post(
        f"{SUBSCRIPTIONS}add/",
        {
            "name": "bad",
            "url": "ftp://example.org/x",
            "event_types": ["retract"],
            "is_active": "on",
        },
    )
    assert bad.status_code == 200 and not Subscription.objects.filter(name="bad").exists()
    measurement = client.post(
        f"{SUBSCRIPTIONS}add/",
        {
            "name": "lift",
            "url": "https://hooks.example.org/lift",
            "event_types": ["enter", "exit"],
            "arm": "control",
            "is_active": "on",
        },
    )
    assert measurement.status_code == 302
    assert Subscription.objects.get(name="lift").arm == "control"
    odd = client.post(
        f"{SUBSCRIPTIONS}add/",
        {"name": "odd", "url": "https://hooks.example.org/odd", "event_types": ["enter"],
         "arm": "holdout", "is_active": "on"},
    )  # fmt: skip
    assert odd.status_code == 200 and "arm" in odd.context["adminform"].form.errors
    assert not Subscription.objects.filter(name="odd").exists()


def test_support_agent_cannot_configure_webhooks(client):
    login(client, SUPPORT_AGENT)
    assert client.get(f"{SUBSCRIPTIONS}add/").status_code == 403
