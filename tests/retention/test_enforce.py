"""Retention: seeded rows older and newer than each rule; exactly the old ones go, the counts
are audited, and the audit chain still verifies."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.audit.services.checkpoints import checkpoint_sign
from compliance.audit.services.witness import witness_record
from compliance.consent.models import ConsentEvent, ConsentState
from compliance.events.models import Event
from compliance.models import SubjectKey
from compliance.retention.models import RetentionRule
from compliance.retention.services.enforce import retention_enforce
from compliance.retention.services.rules import RetentionRuleError, rule_save
from segments.models import SegmentMembership
from tests.factories import SegmentStayFactory, SubjectFactory
from tests.guards import owner_bypass

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = Actor.system("test")
OLD = timedelta(days=400)
NEW = timedelta(days=5)


def rule(category: str, days: int = 30, region: str = "eu") -> RetentionRule:
    return rule_save(
        rule=RetentionRule(category=category, region=region, max_age_days=days), actor=ACTOR
    )


def retention_events(alias: str = "eu") -> list[AuditEvent]:
    return list(
        AuditEvent.objects.using(alias).filter(code=AuditCode.RETENTION_APPLIED).order_by("seq")
    )


def event(subject_id, age: timedelta) -> Event:
    at = timezone.now() - age
    return Event.objects.using("eu").create(
        subject_id=subject_id,
        source="web",
        name="page_view",
        purpose="measurement",
        occurred_at=at,
        received_at=at,
        properties_encrypted=b"x",
    )


def membership(subject_id, key: str, *, exited_age: timedelta | None) -> SegmentMembership:
    now = timezone.now()
    return SegmentStayFactory(
        subject_id=subject_id,
        segment_key=key,
        entered_at=now - OLD - OLD,
        exited_at=None if exited_age is None else now - exited_age,
    )


def consent(subject_id, age: timedelta) -> ConsentEvent:
    at = timezone.now() - age
    return ConsentEvent.objects.using("eu").create(
        subject_id=subject_id,
        purpose="measurement",
        purpose_version=1,
        source="web",
        scope="global",
        lawful_basis="consent",
        decision="granted",
        method="api",
        captured_at=at,
        received_at=at,
        actor_type="system",
    )


def test_behavioral_events_and_exited_memberships_older_than_the_rule_go():
    person = SubjectFactory(jurisdiction="FR")
    old_event, new_event = event(person.pk, OLD), event(person.pk, NEW)
    old_exit = membership(person.pk, "a", exited_age=OLD)
    new_exit = membership(person.pk, "b", exited_age=NEW)
    current = membership(person.pk, "c", exited_age=None)  # entered long ago, still a member
    events_rule, memberships_rule = rule("behavioral_events"), rule("exited_memberships")

    dry = retention_enforce(region="eu", dry_run=True)
    assert {o.category: o.total for o in dry} == {"behavioral_events": 1, "exited_memberships": 1}
    assert Event.objects.using("eu").count() == 2 and not retention_events()

    outcomes = retention_enforce(region="eu")
    assert {o.category: o.total for o in outcomes} == {
        "behavioral_events": 1,
        "exited_memberships": 1,
    }
    assert list(Event.objects.using("eu").values_list("pk", flat=True)) == [new_event.pk]
    assert old_event.pk not in Event.objects.using("eu").values_list("pk", flat=True)
    remaining = set(SegmentMembership.objects.using("eu").values_list("pk", flat=True))
    assert remaining == {new_exit.pk, current.pk} and old_exit.pk not in remaining
    audited = {e.payload["category"]: e.payload for e in retention_events()}
    assert audited["behavioral_events"]["removed"] == {"events.Event": 1}
    assert audited["exited_memberships"]["removed"] == {"segments.SegmentMembership": 1}
    assert all(e.subject_token == "" for e in retention_events())
    events_rule.refresh_from_db()
    memberships_rule.refresh_from_db()
    assert events_rule.last_removed == 1 and events_rule.last_run_at is not None
    assert memberships_rule.total_removed == 1
    # a second run finds nothing more
    assert sum(o.total for o in retention_enforce(region="eu")) == 0
    assert chain_verify(using="eu").ok


def test_consent_events_of_erased_and_inactive_subjects_go_active_ones_stay():
    erased, inactive, active, recent = (SubjectFactory(jurisdiction="FR") for _ in range(4))
    for person in (erased, inactive, active, recent):
        consent(person.pk, OLD)
    newer_of_erased = consent(erased.pk, NEW)
    event(active.pk, NEW)  # still active: a recent behavioral event
    consent(recent.pk, NEW)  # still active: a recent consent decision
    SubjectKey.objects.using("eu").filter(subject_id=erased.pk).delete()  # crypto-shredded
    ConsentState.objects.using("eu").create(
        subject_id=inactive.pk,
        purpose="measurement",
        decision="granted",
        lawful_basis="consent",
        event_id=0,
        captured_at=timezone.now() - OLD,
    )
    rule("consent_events")
    [outcome] = retention_enforce(region="eu")
    assert outcome.removed == {"consent.ConsentEvent": 2, "consent.ConsentState": 1}
    assert outcome.extra["subjects"] == {"erased": 1, "inactive": 1}
    left = ConsentEvent.objects.using("eu")
    assert list(left.filter(subject_id=erased.pk).values_list("pk", flat=True)) == [
        newer_of_erased.pk
    ]
    assert not left.filter(subject_id=inactive.pk).exists()
    assert left.filter(subject_id=active.pk).count() == 1
    assert left.filter(subject_id=recent.pk).count() == 2
    assert not ConsentState.objects.using("eu").filter(subject_id=inactive.pk).exists()
    [audit] = retention_events()
    assert audit.payload["total"] == 3 and audit.payload["subjects"] == {"erased": 1, "inactive": 1}


@pytest.mark.skipif(
    not apps.is_installed("compliance.dsar")
    or "dsar.package" not in {m._meta.label_lower for m in apps.get_models()},
    reason="DSAR models not installed",
)
def test_export_packages_and_closed_request_records_go_after_their_age():
    PrivacyRequest = apps.get_model("dsar", "PrivacyRequest")
    Package = apps.get_model("dsar", "Package")
    now = timezone.now()

    def request(status: str, closed_age: timedelta | None):
        return PrivacyRequest.objects.using("eu").create(
            type="access",
            regulation="gdpr",
            status=status,
            region="eu",
            verification_method="email",
            received_at=now - OLD - OLD,
            due_at=now,
            completed_at=None if closed_age is None else now - closed_age,
        )

    old_closed = request("completed", OLD)
    new_closed = request("completed", NEW)
    open_old = request("processing", None)
    packages = {}
    for name, req, age in (("old", old_closed, OLD), ("new", new_closed, NEW)):
        package = Package.objects.using("eu").create(
            request_id=req.pk,
            ciphertext=b"x",
            wrapped_key=b"k",
            sha256="0" * 64,
            size=1,
            expires_at=now,
        )
        Package.objects.using("eu").filter(pk=package.pk).update(created_at=now - age)
        packages[name] = package.pk
    rule("export_packages", days=30)
    rule("request_records", days=60)
    outcomes = {o.category: o for o in retention_enforce(region="eu")}
    assert outcomes["export_packages"].removed == {"dsar.Package": 1}
    assert outcomes["request_records"].removed["dsar.PrivacyRequest"] == 1
    assert set(Package.objects.using("eu").values_list("pk", flat=True)) == {packages["new"]}
    assert set(PrivacyRequest.objects.using("eu").values_list("pk", flat=True)) == {
        new_closed.pk,
        open_old.pk,
    }
    assert {e.payload["category"] for e in retention_events()} == {
        "export_packages",
        "request_records",
    }


def _seed_chain(settings) -> tuple[int, AuditCheckpoint]:
    """Old entries up to a signed checkpoint, then new ones; returns (old size, checkpoint)."""
    settings.COMPLIANCE_RETENTION_AUDIT_MIN_DAYS = 30
    old = timezone.now() - OLD
    audit_append(
        using="eu",
        entries=[
            AuditEntry(code=AuditCode.CONFIGURATION_CHANGED, actor=ACTOR, payload={"n": i})
            for i in range(20)
        ],
        at=old,
    )
    checkpoint = checkpoint_sign(using="eu", force=True)
    witness_record(checkpoint=checkpoint)  # on commit in production; the test never commits
    audit_append(
        using="eu",
        entries=[
            AuditEntry(code=AuditCode.CONFIGURATION_CHANGED, actor=ACTOR, payload={"n": 100 + i})
            for i in range(5)
        ],
    )
    return checkpoint.size, checkpoint


def test_audit_prefix_up_to_a_signed_checkpoint_goes_and_audit_verify_passes(settings, capsys):
    size, checkpoint = _seed_chain(settings)
    head_before = AuditEvent.objects.using("eu").order_by("-seq").first().seq
    rule("audit_entries", days=30)
    [dry] = retention_enforce(region="eu", dry_run=True)
    assert dry.removed == {"audit.AuditEvent": size} and dry.extra["pruned_through"] == size
    [outcome] = retention_enforce(region="eu")
    assert outcome.removed == {"audit.AuditEvent": size}
    entries = AuditEvent.objects.using("eu")
    assert entries.order_by("seq").first().seq == size + 1
    assert entries.filter(seq__lte=size).count() == 0
    assert entries.count() == head_before - size + 1  # + the RETENTION_APPLIED entry
    [audit] = retention_events()
    assert audit.payload["pruned_through"] == size
    assert audit.payload["anchor_head_hash"] == checkpoint.head_hash
    assert AuditCheckpoint.objects.using("eu").filter(pk=checkpoint.pk).exists()
    # the verifier starts at the signed checkpoint: full, incremental, command, next checkpoint
    assert chain_verify(using="eu").ok
    assert chain_verify(using="eu", incremental=True).ok
    call_command("audit_verify", database=["eu"])
    assert "chain eu: OK" in capsys.readouterr().out
    assert checkpoint_sign(using="eu") is not None
    assert chain_verify(using="eu").ok


def test_a_pruned_prefix_without_its_retention_record_is_still_reported(settings):
    size, _ = _seed_chain(settings)
    with owner_bypass("eu"):
        AuditEvent.objects.using("eu").filter(seq__lte=size).delete()  # not through retention
    result = chain_verify(using="eu")
    assert not result.ok and result.first_finding.kind == "removed"


def test_audit_rule_below_the_legal_minimum_is_refused(settings):
    settings.COMPLIANCE_RETENTION_AUDIT_MIN_DAYS = 2190
    with pytest.raises(RetentionRuleError) as refused:
        rule("audit_entries", days=365)
    assert refused.value.field == "max_age_days" and "2190" in str(refused.value)
    assert not RetentionRule.objects.exists()


def test_damaged_chain_is_not_pruned(settings):
    _seed_chain(settings)
    saved = rule("audit_entries", days=30)
    # a forged checkpoint (INSERT is all an attacker gets past the triggers): bad signature
    AuditCheckpoint.objects.using("eu").create(
        chain_id="eu",
        size=3,
        head_hash="0" * 64,
        signed_at=timezone.now(),
        key_id="forged",
        signature="00" * 64,
    )
    [outcome] = retention_enforce(region="eu")
    assert outcome.total == 0 and "does not verify" in outcome.refused
    assert AuditEvent.objects.using("eu").filter(seq=1).exists()
    saved.refresh_from_db()
    assert "refused" in saved.last_result
    assert retention_events()[-1].payload["refused"] is True


def test_rule_changes_are_audited_in_the_control_chain():
    saved = rule("behavioral_events", days=90)
    saved.max_age_days = 120
    rule_save(rule=saved, actor=ACTOR, changed=["max_age_days"])
    audits = list(
        AuditEvent.objects.using("default").filter(object_type="retention_rule").order_by("seq")
    )
    assert [a.payload["action"] for a in audits] == ["created", "changed"]
    assert audits[-1].payload["max_age_days"] == 120
    assert audits[-1].payload["fields"] == ["max_age_days"]


def test_legal_hold_keeps_the_subjects_rows():
    LegalHold = (
        apps.get_model("dsar", "LegalHold") if apps.is_installed("compliance.dsar") else None
    )
    if LegalHold is None:
        pytest.skip("no DSAR legal holds")
    held, free = SubjectFactory(jurisdiction="FR"), SubjectFactory(jurisdiction="FR")
    event(held.pk, OLD)
    event(free.pk, OLD)
    LegalHold.objects.using("eu").create(subject_id=held.pk, reason="litigation")
    rule("behavioral_events")
    retention_enforce(region="eu")
    assert list(Event.objects.using("eu").values_list("subject_id", flat=True)) == [held.pk]


def test_task_runs_the_region_rules():
    from compliance.retention.tasks import enforce

    person = SubjectFactory(jurisdiction="FR")
    event(person.pk, OLD)
    rule("behavioral_events")
    assert enforce(region="eu") == {"behavioral_events": 1}
    assert uuid.UUID(str(person.pk))


def test_feed_outbox_rows_go_once_every_subscriber_has_them():
    from compliance.feed.models import Change, DeliveryState
    from compliance.feed.services.outbox import ChangeInput, changes_record
    from compliance.feed.services.subscriptions import subscription_create

    now = timezone.now()
    person = uuid.uuid4()

    def change(age: timedelta, **extra) -> int:
        changes_record(
            using="eu",
            changes=[
                ChangeInput(
                    kind=extra.pop("kind", "exit"),
                    subject_id=person,
                    occurred_at=now - age,
                    segment_key="s",
                    **extra,
                )
            ],
        )
        return Change.objects.using("eu").latest("id").pk

    delivered_old = change(OLD)
    notice = change(OLD, kind="retract", reason="erasure")
    pending_old = change(OLD)
    fresh = change(NEW)
    subscription, _ = subscription_create(
        name="crm", url="http://127.0.0.1:9/hook", event_types=["exit", "retract"], actor=ACTOR
    )
    DeliveryState.objects.using("eu").create(subscription_id=subscription.pk, cursor_id=notice)
    rule("feed_changes")

    dry = retention_enforce(region="eu", dry_run=True)
    assert {o.category: o.total for o in dry} == {"feed_changes": 1}
    outcomes = retention_enforce(region="eu")
    assert {o.category: o.total for o in outcomes} == {"feed_changes": 1}
    left = set(Change.objects.using("eu").values_list("pk", flat=True))
    # delivered and old: gone; the erasure notice is the feed's to purge; not yet delivered
    # and recent rows stay
    assert left == {notice, pending_old, fresh} and delivered_old not in left
    audited = {e.payload["category"]: e.payload for e in retention_events()}
    assert audited["feed_changes"]["removed"] == {"feed.Change": 1}
    assert chain_verify(using="eu").ok


def test_a_checkpoint_the_witness_does_not_hold_anchors_no_pruning(settings, tmp_path):
    settings.COMPLIANCE_RETENTION_AUDIT_MIN_DAYS = 30
    audit_append(
        using="eu",
        entries=[
            AuditEntry(code=AuditCode.CONFIGURATION_CHANGED, actor=ACTOR, payload={"n": i})
            for i in range(5)
        ],
        at=timezone.now() - OLD,
    )
    checkpoint_sign(using="eu", force=True)  # signed, never witnessed (no commit here)
    rule("audit_entries", days=30)
    [outcome] = retention_enforce(region="eu")
    assert outcome.removed == {"audit.AuditEvent": 0}
    assert AuditEvent.objects.using("eu").filter(seq=1).exists()
