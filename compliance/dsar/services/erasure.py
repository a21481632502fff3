"""Erasure: ONE engine for one request and for many, resumable step by step, proven and signed.

``erasure_run`` erases a batch of approved erasure requests of one region (the per-request job,
``request_erase_run``, is a batch of one; the bulk job, ``dsar.services.bulk``, batches of
500):

1. *plan* (``erasure_plan.batch_load``): lock the requests, reach every subject (the person
   plus every subject merged into it), reject requests under an active legal hold (->
   ``rejected`` with its reason), record each request's subjects;
2. *steps* (``erasure_steps``), in order, each ONE set-based statement over all subjects of
   the batch: membership exits, suppression, control-directory rows, then every registered
   model, and the ``sweep`` (rows that arrived meanwhile are removed again, up to 3 rounds).
   The registry's steps run in one pass when their rows fit in the transaction's room (one
   count first; a batch of many requests always): all their deletes in ONE statement on
   PostgreSQL. Otherwise each runs unit by unit, at most ``batch_size`` rows per statement
   (the guarded tables' all at once);
3. *receipt*: per request, per-table counts, times, the sweep and the rows kept on purpose
   (registry ``retained``, e.g. the change feed's erasure notices: GDPR Art. 17(2)/19), signed
   with Ed25519; every request ``completed`` through ``requests_transition``.

**Commits.** Steps run in one region transaction until they have touched ``batch_size`` rows:
then the transaction commits with the progress (an ``ErasureStep`` row per step with its rows,
``ERASURE_STEP_COMPLETED`` per finished step) and its audit events (ONE ``audit_append`` per
commit, the change feed's notices after it), and the next steps open the next one. A small
erasure is thus a single transaction, plan to receipt; a large one commits every
``batch_size`` rows. A batch of many requests (the bulk job) is always one transaction. A
worker killed at any point loses only the open transaction; the next run resumes at the
committed progress (a run locks its requests first: two runs of one request queue) and never
writes an audit event twice.

Quirk: control-directory rows live in the control database and go in its own statement; if the
region transaction then rolls back, the rerun counts 0 for them (they are gone; the sweep
proves it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.services.append import Actor
from compliance.dsar.models import PrivacyRequest, RequestType
from compliance.dsar.services.erasure_finish import (
    ErasureIncompleteError,
    Progress,
    batch_finish,
    erasure_counts,
)
from compliance.dsar.services.erasure_plan import (
    ErasureBatch,
    batch_load,
    holds_active,
    subjects_reached,
)
from compliance.dsar.services.erasure_steps import (
    TOGETHER,
    Step,
    erasure_steps,
    step_unit,
    units_together,
)
from compliance.dsar.services.errors import RequestError
from compliance.dsar.sql import rows_count, subject_rows
from compliance.models import Identity, SubjectDirectory
from compliance.personal_data import personal_data_models
from compliance.regions import region_alias

__all__ = [
    "ErasureIncompleteError",
    "erasure_counts",
    "erasure_preview",
    "erasure_retained",
    "erasure_run",
    "request_erase_run",
    "step_progressed",
    "subjects_reached",
]

BATCH_SIZE = 1000
#: the row limit of a batch of many requests (one transaction, whatever it touches)
UNBOUNDED = 10**9
SYSTEM = Actor.system("erasure")


def erasure_retained(*, alias: str, subject_ids: Sequence[UUID]) -> dict[str, dict]:
    """Rows of ``subject_ids`` that erasure deliberately keeps, per registered model that
    declares ``retained``: ``{label: {"rows": n, "why": text}}`` (preview and receipt)."""
    kept = [e for e in personal_data_models() if e.retained]
    counts = rows_count(
        using=alias,
        rows={
            e.label: subject_rows(using=alias, entry=e, subject_ids=subject_ids, kept=True)
            for e in kept
        },
    )
    return {e.label: {"rows": counts[e.label], "why": e.retained_why} for e in kept}


def erasure_preview(*, request: PrivacyRequest) -> dict:
    """Dry run of an erasure: what would go, per table; nothing is changed."""
    if request.type != RequestType.ERASURE:
        raise RequestError("the preview is for erasure requests", field="type")
    alias = request._state.db
    if request.subject_id is None:
        return {
            "subjects": 0,
            "tables": {},
            "retained": {},
            "directory_rows": 0,
            "identifiers_to_suppress": 0,
        }
    ids = [s.pk for s in subjects_reached(alias=alias, subject_id=request.subject_id)]
    return {
        "subjects": len(ids),
        "tables": erasure_counts(alias=alias, subject_ids=ids),
        "retained": erasure_retained(alias=alias, subject_ids=ids),
        "directory_rows": SubjectDirectory.objects.filter(subject_id__in=ids).count(),
        "identifiers_to_suppress": Identity.objects.using(alias).filter(subject_id__in=ids).count(),
        "legal_hold": bool(holds_active(alias=alias, subject_ids=ids)),
    }


def step_progressed(*, request: PrivacyRequest, step: str) -> None:
    """Called after each unit of work of a run (one statement of a step), inside the run's
    open transaction, or just after the commit when the unit closed it. Does nothing: a seam
    for tests, which replace it with a double (e.g. one that pauses, to kill a worker)."""


def request_erase_run(
    *, region: str, request_id: UUID | str, actor: Actor = SYSTEM, batch_size: int = BATCH_SIZE
) -> PrivacyRequest:
    """Run (or resume) the erasure of a request in ``processing`` (a batch of one); other
    statuses and types: no-op. Returns the request as it is now."""
    alias = region_alias(region=region)
    batch = erasure_run(
        alias=alias, request_ids=[UUID(str(request_id))], actor=actor, batch_size=batch_size
    )
    if batch.requests:  # completed by this run, as saved
        return batch.requests[0]
    return PrivacyRequest.objects.using(alias).get(pk=request_id)


#: the control database (directory rows, receipts' audit): locked before the region's
CONTROL = "default"


def erasure_run(
    *,
    alias: str,
    request_ids: Sequence[UUID],
    actor: Actor = SYSTEM,
    batch_size: int = BATCH_SIZE,
    skip_planned: bool = False,
    mode: str | None = None,
) -> ErasureBatch:
    """Erase (or resume) the requests ``request_ids`` as one batch (see the module docstring).
    ``skip_planned``: leave requests another run has planned (the bulk job). Returns the batch:
    ``requests`` (those this run completed, as saved), ``rejected`` and ``skipped``."""
    steps = erasure_steps()
    ids, first = list(request_ids), None
    while True:
        # lock order of every request path (request_open, the officer desk): the control
        # database first, then the region; on SQLite each takes one writer at a time, and the
        # other order (region, then the directory step on the control database) could leave a
        # web request and this run waiting on each other until the busy timeout
        with transaction.atomic(using=CONTROL), transaction.atomic(using=alias):
            batch = batch_load(
                alias=alias,
                request_ids=ids,
                actor=actor,
                steps=len(steps),
                skip_planned=skip_planned and first is None,
            )
            batch.mode = mode
            if first is None:
                first, ids = batch, batch.request_ids
            if not batch.requests:  # nothing (left) to erase: completed by nobody here
                first.requests = []
                return first
            progress = Progress.load(batch=batch, steps=steps)
            # only a batch of one commits between steps (see erasure_finish.Progress)
            limit = batch_size if len(batch.requests) == 1 else UNBOUNDED
            step = _run_steps(batch=batch, steps=steps, progress=progress, limit=limit)
            if step is None:
                first.requests = batch_finish(batch=batch, steps=steps, progress=progress)
        if step is None:
            return first
        step_progressed(request=batch.requests[0], step=step.name)


def _run_steps(
    *, batch: ErasureBatch, steps: list[Step], progress: Progress, limit: int
) -> Step | None:
    """Run units until ``limit`` rows are touched (then record the progress and return the
    step: the caller commits) or every step but the sweep is done (None)."""
    touched, now, together = 0, timezone.now(), True
    for step in steps[:-1]:
        if together and step.kind in TOGETHER and not progress.done(step):
            together = False  # one try per run: counted once
            room = UNBOUNDED if limit >= UNBOUNDED else limit - touched
            touched += _run_together(batch=batch, steps=steps, progress=progress, room=room, at=now)
        while not progress.done(step):
            unit = step_unit(batch=batch, step=step, limit=limit, at=now)
            progress.add(step=step, unit=unit, at=now)
            touched += sum(unit.rows.values())
            if touched >= limit:
                progress.save(at=now)
                return step
            step_progressed(request=batch.requests[0], step=step.name)
    return None


def _run_together(
    *, batch: ErasureBatch, steps: list[Step], progress: Progress, room: int, at: datetime
) -> int:
    """Run every registry step not yet done in one pass (``units_together``) when their rows
    fit in ``room`` (counted first, in one statement, unless ``room`` is unbounded: a batch of
    many requests); rows touched (0 when they do not fit: the steps then run unit by unit)."""
    pending = [s for s in steps if s.kind in TOGETHER and not progress.done(s)]
    if room < UNBOUNDED:
        counts = erasure_counts(alias=batch.alias, subject_ids=batch.ids)
        if sum(counts.values()) >= room:
            return 0
    touched = 0
    for step, unit in zip(pending, units_together(batch=batch, steps=pending, at=at), strict=True):
        progress.add(step=step, unit=unit, at=at)
        touched += sum(unit.rows.values())
        step_progressed(request=batch.requests[0], step=step.name)
    return touched
