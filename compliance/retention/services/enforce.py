"""Enforcing retention rules in one region: remove what is older than each rule allows.

``retention_enforce(region=...)`` runs every active rule of the region, in batches of
``BATCH_SIZE`` rows per transaction; on PostgreSQL consent events, memberships and audit
entries go through the guard functions ``compliance_retention_delete`` and ``audit_prune``
(``compliance.db_guards``: the runtime role cannot delete them otherwise). After each
rule it appends one ``RETENTION_APPLIED`` (801) event to the region's chain with the counts per
table (never personal data) and records the run on the rule (last run, rows removed).
``dry_run=True`` counts what would go and changes nothing (no audit event either).

What each category removes (subjects under an active DSAR legal hold are always kept):

* ``behavioral_events`` - events that occurred before the cut-off;
* ``exited_memberships`` - membership stays exited before the cut-off (never a current one);
* ``consent_events`` - of *erased* subjects (no data key any more): their events received
  before the cut-off; of *inactive* subjects (newest consent event, newest behavioral event
  and every membership exit older than the cut-off, no current membership): all their events
  and their consent state. The subjects are locked as a consent writer locks them, and a stay
  that entered meanwhile on the consent being removed is closed first (reason ``retention``,
  audited, through ``memberships_exit_subjects``): no stay outlives its consent proof;
* ``export_packages`` - DSAR export packages created before the cut-off;
* ``request_records`` - closed DSAR requests (completed, rejected, cancelled, failed) closed
  before the cut-off, with their erasure steps, packages and control directory rows (the
  destroyed-key ledger is kept: it must survive to replay erasures after a restore);
* ``feed_changes`` - change-feed outbox rows that occurred before the cut-off and that every
  active webhook subscription of the region has passed (id at or below the lowest delivery
  cursor); pull consumers have the rule's age as their window. Erasure notices are left to the
  feed's own purge (``compliance.feed.services.notices``);
* ``audit_entries`` - the prefix of the chain up to the newest signed checkpoint whose entry is
  older than the cut-off, in one transaction together with the ``RETENTION_APPLIED`` event
  that records ``pruned_through``; the checkpoints stay, so ``audit_verify`` starts the walk at
  that checkpoint's signed head. Refused (nothing removed) when the chain does not verify.

Quirk: a run that dies between batches has removed some rows without its audit event; the
next run removes the rest and reports only what it removed itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.db.models import F, Q
from django.utils import timezone

from compliance.audit.hashing import format_time
from compliance.audit.services.append import Actor
from compliance.events.models import Event
from compliance.feed.models import ERASURE_NOTICE, Change, DeliveryState
from compliance.feed.selectors.subscriptions import subscriptions_for_region
from compliance.regions import region_alias
from compliance.retention.conf import retention_settings
from compliance.retention.models import Category, RetentionRule
from compliance.retention.services.audit_prune import audit_entries_remove
from compliance.retention.services.consent import consent_events_remove
from compliance.retention.services.rules import RetentionRuleError, dsar_model, rule_validate
from compliance.retention.services.run import (
    RetentionRefused,
    RuleRun,
    chunks,
    rows_remove,
    rule_audit,
    run_audit,
    unheld,
)
from segments.models import SegmentMembership

#: DSAR statuses after which a request is closed
CLOSED_STATUSES = ("completed", "rejected", "cancelled", "failed")
#: DSAR models removed with a closed request (by ``request_id``); the key ledger is not
REQUEST_DEPENDANTS = ("ErasureStep", "Package")


@dataclass
class RuleOutcome:
    rule_id: int
    category: str
    region: str
    max_age_days: int
    cutoff: datetime
    dry_run: bool
    removed: dict[str, int] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    refused: str = ""

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _model(app_label: str, name: str):
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def held_subjects(*, alias: str) -> set:
    """Subjects under an active DSAR legal hold (none if the DSAR app has no holds)."""
    hold = _model("dsar", "LegalHold")
    if hold is None:
        return set()
    return set(hold.objects.using(alias).filter(active=True).values_list("subject_id", flat=True))


def _events(run: RuleRun):
    rows = unheld(run, Event.objects.using(run.alias).filter(occurred_at__lt=run.cutoff))
    return {"events.Event": rows_remove(run, rows)}, {}


def _memberships(run: RuleRun):
    rows = SegmentMembership.objects.using(run.alias).filter(
        exited_at__isnull=False, exited_at__lt=run.cutoff
    )
    return {"segments.SegmentMembership": rows_remove(run, unheld(run, rows))}, {}


def _packages(run: RuleRun):
    package = dsar_model(Category.EXPORT_PACKAGES)
    rows = package.objects.using(run.alias).filter(created_at__lt=run.cutoff)
    return {package._meta.label: rows_remove(run, unheld(run, rows))}, {}


def _requests(run: RuleRun):
    request = dsar_model(Category.REQUEST_RECORDS)
    closed = (
        request.objects.using(run.alias)
        .filter(status__in=CLOSED_STATUSES)
        .filter(
            Q(completed_at__lt=run.cutoff) | Q(completed_at__isnull=True, updated_at__lt=run.cutoff)
        )
    )
    ids = list(unheld(run, closed).values_list("pk", flat=True))
    counts = {request._meta.label: 0}
    dependants = [m for m in (_model("dsar", n) for n in REQUEST_DEPENDANTS) if m is not None]
    directory = _model("dsar", "RequestDirectory")
    for model in dependants:
        counts[model._meta.label] = 0
    if directory is not None:
        counts[directory._meta.label] = 0
    for chunk in chunks(ids, run.batch):
        for model in dependants:
            rows = model.objects.using(run.alias).filter(request_id__in=chunk)
            counts[model._meta.label] += rows_remove(run, rows)
        rows = request.objects.using(run.alias).filter(pk__in=chunk)
        counts[request._meta.label] += rows_remove(run, rows)
        if directory is not None:
            rows = directory.objects.filter(request_id__in=chunk)
            counts[directory._meta.label] += rows.count() if run.dry_run else rows.delete()[0]
    return counts, {}


def _feed_changes(run: RuleRun):
    rows = (
        Change.objects.using(run.alias).filter(occurred_at__lt=run.cutoff).exclude(**ERASURE_NOTICE)
    )
    active = [s.pk for s in subscriptions_for_region(region=run.alias)]
    if active:
        cursors = dict(
            DeliveryState.objects.using(run.alias)
            .filter(subscription_id__in=active)
            .values_list("subscription_id", "cursor_id")
        )
        rows = rows.filter(id__lte=min(cursors.get(pk, 0) for pk in active))
    return {Change._meta.label: rows_remove(run, unheld(run, rows))}, {}


Handler = Callable[[RuleRun], tuple[dict[str, int], dict]]
HANDLERS: dict[str, Handler] = {
    Category.BEHAVIORAL_EVENTS: _events,
    Category.EXITED_MEMBERSHIPS: _memberships,
    Category.CONSENT_EVENTS: consent_events_remove,
    Category.EXPORT_PACKAGES: _packages,
    Category.REQUEST_RECORDS: _requests,
    Category.FEED_CHANGES: _feed_changes,
    Category.AUDIT_ENTRIES: audit_entries_remove,
}


def rule_enforce(
    *,
    rule: RetentionRule,
    actor: Actor | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RuleOutcome:
    """Run one rule (see the module docstring); a refused rule removes nothing and says why."""
    actor = actor or Actor.system("retention")
    alias = region_alias(region=rule.region)
    now = now or timezone.now()
    cutoff = now - timedelta(days=rule.max_age_days)
    outcome = RuleOutcome(
        rule_id=rule.pk,
        category=rule.category,
        region=rule.region,
        max_age_days=rule.max_age_days,
        cutoff=cutoff,
        dry_run=dry_run,
    )
    try:
        rule_validate(rule=rule)
        run = RuleRun(
            rule=rule,
            alias=alias,
            cutoff=cutoff,
            dry_run=dry_run,
            batch=retention_settings.BATCH_SIZE,
            held=held_subjects(alias=alias),
            actor=actor,
        )
        removed, extra = HANDLERS[rule.category](run)
    except (RetentionRuleError, RetentionRefused) as exc:
        outcome.refused = str(exc)
        if not dry_run:
            rule_audit(
                alias,
                rule,
                actor,
                {"category": rule.category, "refused": True, "removed": {}, "total": 0},
            )
            RetentionRule.objects.filter(pk=rule.pk).update(
                last_run_at=now, last_removed=0, last_result={"refused": str(exc)[:500]}
            )
        return outcome
    outcome.removed, outcome.extra = removed, extra
    if dry_run:
        return outcome
    if not extra.get("audited"):
        run_audit(run, removed, extra)
    RetentionRule.objects.filter(pk=rule.pk).update(
        last_run_at=now,
        last_removed=outcome.total,
        total_removed=F("total_removed") + outcome.total,
        last_result={"removed": removed, "cutoff": format_time(cutoff)},
    )
    return outcome


def retention_enforce(
    *,
    region: str,
    actor: Actor | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[RuleOutcome]:
    """Run every active rule of ``region`` (audit entries last, so the prune's own chain
    entry comes after the other rules' events)."""
    rules = RetentionRule.objects.filter(region=region, is_active=True)
    ordered = sorted(rules, key=lambda r: (r.category == Category.AUDIT_ENTRIES, r.category))
    return [rule_enforce(rule=r, actor=actor, dry_run=dry_run, now=now) for r in ordered]
