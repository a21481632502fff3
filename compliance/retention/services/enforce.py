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
  and their consent state;
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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.db import connections, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.db_guards import is_guarded, is_postgresql, retention_delete
from compliance.errors import InternalError
from compliance.regions import region_alias
from compliance.retention.conf import retention_settings
from compliance.retention.models import Category, RetentionRule
from compliance.retention.services.rules import RetentionRuleError, dsar_model, rule_validate

#: DSAR statuses after which a request is closed
CLOSED_STATUSES = ("completed", "rejected", "cancelled", "failed")
#: DSAR models removed with a closed request (by ``request_id``); the key ledger is not
REQUEST_DEPENDANTS = ("ErasureStep", "Package")


class RetentionRefused(InternalError):
    """A rule that may not run now (reason in the message)."""


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


def _remove(alias: str, queryset, *, dry_run: bool, batch: int) -> int:
    """Delete ``queryset`` (a regional queryset on ``alias``) in batches; count if dry run."""
    if dry_run:
        return queryset.count()
    model = queryset.model
    removed = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return removed
        with transaction.atomic(using=alias):
            if is_postgresql(alias) and is_guarded(model):
                removed += retention_delete(using=alias, table=model._meta.db_table, ids=ids)
            else:
                removed += model.objects.using(alias).filter(pk__in=ids).delete()[0]


def _events(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    from compliance.events.models import Event

    rows = Event.objects.using(alias).filter(occurred_at__lt=cutoff)
    if held:
        rows = rows.exclude(subject_id__in=held)
    return {"events.Event": _remove(alias, rows, dry_run=dry_run, batch=batch)}, {}


def _memberships(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    from segments.models import SegmentMembership

    rows = SegmentMembership.objects.using(alias).filter(
        exited_at__isnull=False, exited_at__lt=cutoff
    )
    if held:
        rows = rows.exclude(subject_id__in=held)
    return {"segments.SegmentMembership": _remove(alias, rows, dry_run=dry_run, batch=batch)}, {}


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _consent(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    from compliance.consent.models import ConsentEvent, ConsentState
    from compliance.events.models import Event
    from compliance.models import SubjectKey
    from segments.models import SegmentMembership

    events = ConsentEvent.objects.using(alias)
    candidates = sorted(
        set(events.filter(received_at__lt=cutoff).values_list("subject_id", flat=True)) - held
    )
    counts = {"consent.ConsentEvent": 0, "consent.ConsentState": 0}
    subjects = {"erased": 0, "inactive": 0}
    for chunk in _chunks(candidates, 500):
        keyed = set(
            SubjectKey.objects.using(alias)
            .filter(subject_id__in=chunk)
            .values_list("subject_id", flat=True)
        )
        erased = [sid for sid in chunk if sid not in keyed]
        alive = [sid for sid in chunk if sid in keyed]
        newest = dict(
            events.filter(subject_id__in=alive)
            .values_list("subject_id")
            .annotate(newest=Max("received_at"))
        )
        stale = {sid for sid in alive if newest.get(sid) and newest[sid] < cutoff}
        stale -= set(
            Event.objects.using(alias)
            .filter(subject_id__in=stale, occurred_at__gte=cutoff)
            .values_list("subject_id", flat=True)
        )
        stale -= set(
            SegmentMembership.objects.using(alias)
            .filter(subject_id__in=stale)
            .filter(Q(exited_at__isnull=True) | Q(exited_at__gte=cutoff))
            .values_list("subject_id", flat=True)
        )
        inactive = sorted(stale)
        subjects["erased"] += len(erased)
        subjects["inactive"] += len(inactive)
        doomed = events.filter(
            Q(subject_id__in=erased, received_at__lt=cutoff) | Q(subject_id__in=inactive)
        )
        counts["consent.ConsentEvent"] += _remove(alias, doomed, dry_run=dry_run, batch=batch)
        # the projection of subjects left without events goes with them
        states = ConsentState.objects.using(alias).filter(subject_id__in=[*erased, *inactive])
        if not dry_run:
            remaining = set(
                events.filter(subject_id__in=erased).values_list("subject_id", flat=True)
            )
            states = states.exclude(subject_id__in=remaining)
        else:
            states = states.filter(subject_id__in=inactive)
        counts["consent.ConsentState"] += _remove(alias, states, dry_run=dry_run, batch=batch)
    return counts, {"subjects": subjects}


def _packages(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    package = dsar_model(Category.EXPORT_PACKAGES)
    rows = package.objects.using(alias).filter(created_at__lt=cutoff)
    if held:
        rows = rows.exclude(subject_id__in=held)
    return {package._meta.label: _remove(alias, rows, dry_run=dry_run, batch=batch)}, {}


def _requests(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    request = dsar_model(Category.REQUEST_RECORDS)
    closed = (
        request.objects.using(alias)
        .filter(status__in=CLOSED_STATUSES)
        .filter(Q(completed_at__lt=cutoff) | Q(completed_at__isnull=True, updated_at__lt=cutoff))
    )
    if held:
        closed = closed.exclude(subject_id__in=held)
    ids = list(closed.values_list("pk", flat=True))
    counts = {request._meta.label: 0}
    dependants = [m for m in (_model("dsar", n) for n in REQUEST_DEPENDANTS) if m is not None]
    directory = _model("dsar", "RequestDirectory")
    for model in dependants:
        counts[model._meta.label] = 0
    if directory is not None:
        counts[directory._meta.label] = 0
    for chunk in _chunks(ids, batch):
        for model in dependants:
            rows = model.objects.using(alias).filter(request_id__in=chunk)
            counts[model._meta.label] += _remove(alias, rows, dry_run=dry_run, batch=batch)
        rows = request.objects.using(alias).filter(pk__in=chunk)
        counts[request._meta.label] += _remove(alias, rows, dry_run=dry_run, batch=batch)
        if directory is not None:
            rows = directory.objects.filter(request_id__in=chunk)
            counts[directory._meta.label] += rows.count() if dry_run else rows.delete()[0]
    return counts, {}


def audit_prune_point(*, alias: str, cutoff: datetime) -> tuple[int, AuditCheckpoint] | None:
    """``(first present seq, checkpoint)``: the chain prefix that may go - up to the newest
    valid signed checkpoint whose entry is older than ``cutoff`` and, where a witness directory
    is configured, that the witness holds; ``None`` if nothing may."""
    from compliance.audit.selectors.verification import checkpoint_signature_valid

    witnessed = _witnessed(alias)

    entries = AuditEvent.objects.using(alias)
    first = entries.order_by("seq").values_list("seq", flat=True).first()
    newest_old = entries.filter(occurred_at__lt=cutoff).aggregate(top=Max("seq"))["top"]
    if first is None or newest_old is None:
        return None
    for checkpoint in (
        AuditCheckpoint.objects.using(alias)
        .filter(chain_id=alias, size__gte=first, size__lte=newest_old)
        .order_by("-size")
    ):
        entry = entries.filter(seq=checkpoint.size).values_list("hash", flat=True).first()
        if entry == checkpoint.head_hash and checkpoint_signature_valid(checkpoint):
            if witnessed is None or (checkpoint.size, checkpoint.head_hash) in witnessed:
                return first, checkpoint
    return None


def _witnessed(alias: str) -> set[tuple[int, str]] | None:
    """The (size, head hash) pairs the witness directory holds for ``alias``'s chain, or
    ``None`` when no witness directory is configured (an HTTP witness cannot be read back)."""
    from pathlib import Path

    from compliance.audit.selectors.witness import witness_read
    from compliance.conf import compliance_settings

    root = compliance_settings.AUDIT_WITNESS_DIR
    if not root:
        return None
    log = witness_read(root=Path(root), chain_id=alias)
    return {(item.size, item.head_hash) for item in log.checkpoints}


def _audit_delete(*, alias: str, first: int, through: int, batch: int) -> int:
    """Delete the chain prefix through ``through``. PostgreSQL: ``audit_prune``, which checks
    the checkpoint and the minimum age itself (the runtime role cannot delete entries)."""
    if is_postgresql(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT audit_prune(%s, %s, %s)", [alias, through, retention_settings.AUDIT_MIN_DAYS]
            )
            return cursor.fetchone()[0]
    removed = 0
    for start in range(first, through + 1, batch):
        end = min(start + batch - 1, through)
        removed += AuditEvent.objects.using(alias).filter(seq__gte=start, seq__lte=end).delete()[0]
    return removed


def _audit(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set, *, rule, actor):
    from compliance.audit.selectors.verification import chain_verify

    point = audit_prune_point(alias=alias, cutoff=cutoff)
    if point is None:
        return {"audit.AuditEvent": 0}, {}
    first, checkpoint = point
    count = checkpoint.size - first + 1
    extra = {"pruned_through": checkpoint.size, "anchor_head_hash": checkpoint.head_hash}
    if dry_run:
        return {"audit.AuditEvent": count}, extra
    verified = chain_verify(using=alias)
    if not verified.ok:
        raise RetentionRefused(
            "the audit chain does not verify, so no prefix is dropped: "
            + verified.first_finding.describe(alias)
        )
    with transaction.atomic(using=alias):
        removed = _audit_delete(alias=alias, first=first, through=checkpoint.size, batch=batch)
        outcome_payload = _payload(rule, cutoff, {"audit.AuditEvent": removed}, extra)
        _append(alias, rule, actor, outcome_payload)
    return {"audit.AuditEvent": removed}, {**extra, "audited": True}


def _feed_changes(alias: str, cutoff: datetime, dry_run: bool, batch: int, held: set):
    from compliance.feed.models import ERASURE_NOTICE, Change, DeliveryState
    from compliance.feed.selectors.subscriptions import subscriptions_for_region

    rows = Change.objects.using(alias).filter(occurred_at__lt=cutoff).exclude(**ERASURE_NOTICE)
    active = [s.pk for s in subscriptions_for_region(region=alias)]
    if active:
        cursors = dict(
            DeliveryState.objects.using(alias)
            .filter(subscription_id__in=active)
            .values_list("subscription_id", "cursor_id")
        )
        rows = rows.filter(id__lte=min(cursors.get(pk, 0) for pk in active))
    if held:
        rows = rows.exclude(subject_id__in=held)
    return {Change._meta.label: _remove(alias, rows, dry_run=dry_run, batch=batch)}, {}


Handler = Callable[..., tuple[dict[str, int], dict]]
HANDLERS: dict[str, Handler] = {
    Category.BEHAVIORAL_EVENTS: _events,
    Category.EXITED_MEMBERSHIPS: _memberships,
    Category.CONSENT_EVENTS: _consent,
    Category.EXPORT_PACKAGES: _packages,
    Category.REQUEST_RECORDS: _requests,
    Category.FEED_CHANGES: _feed_changes,
}


def _payload(rule: RetentionRule, cutoff: datetime, removed: dict, extra: dict) -> dict:
    return {
        "category": rule.category,
        "max_age_days": rule.max_age_days,
        "cutoff": format_time(cutoff),
        "removed": dict(removed),
        "total": sum(removed.values()),
        **{k: v for k, v in extra.items() if k != "audited"},
    }


def _append(alias: str, rule: RetentionRule, actor: Actor, payload: dict) -> None:
    audit_append(
        using=alias,
        entries=[
            AuditEntry(
                code=AuditCode.RETENTION_APPLIED,
                actor=actor,
                object_type="retention_rule",
                object_id=str(rule.pk),
                payload=payload,
            )
        ],
    )


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
    batch = retention_settings.BATCH_SIZE
    try:
        rule_validate(rule=rule)
        held = held_subjects(alias=alias)
        if rule.category == Category.AUDIT_ENTRIES:
            removed, extra = _audit(alias, cutoff, dry_run, batch, held, rule=rule, actor=actor)
        else:
            removed, extra = HANDLERS[rule.category](alias, cutoff, dry_run, batch, held)
    except (RetentionRuleError, RetentionRefused) as exc:
        outcome.refused = str(exc)
        if not dry_run:
            _append(
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
        _append(alias, rule, actor, _payload(rule, cutoff, removed, extra))
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
