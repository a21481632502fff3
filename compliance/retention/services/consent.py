"""Retention of consent records (category ``consent_events``; see
``compliance.retention.services.enforce``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Q

from compliance.consent.models import ConsentEvent, ConsentState
from compliance.events.models import Event
from compliance.models import Subject, SubjectKey
from compliance.retention.services.run import RuleRun, chunks, rows_remove
from segments.models import ExitReason, SegmentMembership
from segments.services.exits import memberships_exit_subjects

#: subjects per transaction
SUBJECT_CHUNK = 500


def consent_events_remove(run: RuleRun):
    """The consent events (and consent states) of erased and inactive subjects, per chunk of
    subjects in one transaction; counts per table, and per kind of subject."""
    events = ConsentEvent.objects.using(run.alias)
    candidates = sorted(
        set(events.filter(received_at__lt=run.cutoff).values_list("subject_id", flat=True))
        - run.held
    )
    counts = {"consent.ConsentEvent": 0, "consent.ConsentState": 0}
    subjects = {"erased": 0, "inactive": 0}
    exited = 0
    for chunk in chunks(candidates, SUBJECT_CHUNK):
        erased, inactive = _erased_and_inactive(run, chunk)
        subjects["erased"] += len(erased)
        subjects["inactive"] += len(inactive)
        with transaction.atomic(using=run.alias):
            exited += _consent_remove(run, erased=erased, inactive=inactive, counts=counts)
    extra: dict = {"subjects": subjects}
    if exited:
        extra["memberships_exited"] = exited
    return counts, extra


def _erased_and_inactive(run: RuleRun, chunk: list) -> tuple[list, list]:
    """Of ``chunk``: the erased subjects (no data key) and the inactive ones (no consent event,
    behavioral event or membership exit since the cut-off, no current membership)."""
    alias, cutoff = run.alias, run.cutoff
    keyed = set(
        SubjectKey.objects.using(alias)
        .filter(subject_id__in=chunk)
        .values_list("subject_id", flat=True)
    )
    erased = [sid for sid in chunk if sid not in keyed]
    alive = [sid for sid in chunk if sid in keyed]
    newest = dict(
        ConsentEvent.objects.using(alias)
        .filter(subject_id__in=alive)
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
    return erased, sorted(stale)


def _consent_remove(run: RuleRun, *, erased: list, inactive: list, counts: dict) -> int:
    """Remove the consent events (and states left without events) of ``erased`` and
    ``inactive``, in the caller's transaction; returns the stays closed first (a stay entered
    since the subjects were found inactive must not outlive the consent it entered on)."""
    alias, doomed = run.alias, [*erased, *inactive]
    exited = 0
    if not run.dry_run and doomed:
        # like a consent writer: memberships_apply holds FOR KEY SHARE on the subjects it enters
        list(Subject.objects.using(alias).select_for_update().filter(pk__in=doomed).order_by("pk"))
        exited = memberships_exit_subjects(
            region=run.rule.region, subject_ids=doomed, reason=ExitReason.RETENTION, actor=run.actor
        )
    events = ConsentEvent.objects.using(alias)
    gone = events.filter(
        Q(subject_id__in=erased, received_at__lt=run.cutoff) | Q(subject_id__in=inactive)
    )
    counts["consent.ConsentEvent"] += rows_remove(run, gone)
    # the projection of subjects left without events goes with them
    states = ConsentState.objects.using(alias).filter(subject_id__in=doomed)
    if not run.dry_run:
        remaining = set(events.filter(subject_id__in=erased).values_list("subject_id", flat=True))
        states = states.exclude(subject_id__in=remaining)
    else:
        states = states.filter(subject_id__in=inactive)
    counts["consent.ConsentState"] += rows_remove(run, states)
    return exited
