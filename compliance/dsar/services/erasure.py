"""Erasure: walk the personal-data registry, resumable step by step, then prove and sign.

``request_erase_run`` is what the Celery job calls; it is idempotent and resumable:

1. *plan* (first run only): refuse under an active legal hold (-> ``rejected`` with its reason),
   record the subjects reached (the person plus every subject merged into it, via
   ``Subject.merged_into``) and one ``ErasureStep`` row per step;
2. *steps*, in order: ``memberships_exit`` (``memberships_exit_all`` with reason ``erasure``,
   when the segments app provides it), ``suppression`` (blind indexes of every identity ->
   ``Suppression``, ``SUPPRESSION_ADDED``), ``directory`` (control-database rows removed), then
   every registered model in erasure order, deleted in batches (``SubjectKey`` is destroyed and
   written to the ``DestroyedKey`` ledger with ``SUBJECT_KEY_DESTROYED``; privacy requests are
   kept but lose their subject), and the ``sweep``;
3. *receipt*: per-table counts, times and the sweep, signed with Ed25519, and ``completed``.

Rows a registry entry declares ``retained`` are kept on purpose and listed in the receipt
(``retained``: rows and why) instead of the sweep: the change feed's *erasure notices* (the
``retract`` changes with reason ``erasure`` that ``memberships_exit`` just wrote: random subject
id and segment key only), so webhooks and pull consumers learn of the erasure (GDPR Art.
17(2)/19); the feed's sweep removes them once delivered.

Each batch commits together with the step's row count, and a step is marked done (with its
``ERASURE_STEP_COMPLETED`` event) in the transaction of its last write: a worker killed at any
point resumes at the first unfinished step, redoes at most an uncommitted batch, and never
writes an audit event twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.db_guards import erase_rows, is_guarded, is_postgresql
from compliance.dsar.models import (
    DestroyedKey,
    ErasureStep,
    PrivacyRequest,
    RequestType,
    Status,
    StepStatus,
)
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.receipts import receipt_body, receipt_sign
from compliance.dsar.services.requests import active_hold
from compliance.dsar.services.suppression import suppressions_add
from compliance.dsar.services.transitions import request_entry, request_transition
from compliance.errors import InternalError
from compliance.models import Identity, Subject, SubjectDirectory, SubjectKey
from compliance.personal_data import PersonalDataModel, personal_data_models
from compliance.regions import region_alias
from segments.services.memberships import memberships_exit_all

BATCH_SIZE = 1000
SWEEP_ROUNDS = 3
SYSTEM = Actor.system("erasure")


class ErasureIncompleteError(InternalError):
    """The sweep still found rows of the subject after the steps were redone."""


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # memberships_exit | suppression | directory | delete | key | anonymise | sweep
    entry: PersonalDataModel | None = None


def erasure_steps() -> list[Step]:
    """The steps of an erasure, in order, from the registry as it is now."""
    steps = [
        Step("memberships_exit", "memberships_exit"),
        Step("suppression", "suppression"),
        Step("directory", "directory"),
    ]
    for entry in personal_data_models():
        if entry.model is SubjectKey:
            steps.append(Step(entry.label, "key", entry))
        elif entry.model is PrivacyRequest:
            steps.append(Step(entry.label, "anonymise", entry))
        else:
            steps.append(Step(entry.label, "delete", entry))
    steps.append(Step("sweep", "sweep"))
    return steps


def subjects_reached(*, alias: str, subject_id: UUID) -> list[Subject]:
    """The subject and, transitively, every subject merged into it (stitched identities)."""
    found: dict[UUID, Subject] = {}
    frontier = list(Subject.objects.using(alias).filter(pk=subject_id))
    while frontier:
        for subject in frontier:
            found[subject.pk] = subject
        frontier = [
            s
            for s in Subject.objects.using(alias).filter(merged_into__in=[s.pk for s in frontier])
            if s.pk not in found
        ]
    return list(found.values())


def _filter(entry: PersonalDataModel, alias: str, ids: list[UUID]):
    """The rows of ``ids`` that erasure removes (``retained`` rows excluded)."""
    return entry.erasable(using=alias, subject_ids=ids)


def erasure_counts(*, alias: str, subject_ids: list[UUID]) -> dict[str, int]:
    """Rows per registered model held for ``subject_ids`` that erasure removes (the preview
    and the sweep); rows the registry declares ``retained`` are not counted."""
    return {e.label: _filter(e, alias, subject_ids).count() for e in personal_data_models()}


def erasure_retained(*, alias: str, subject_ids: list[UUID]) -> dict[str, dict]:
    """Rows of ``subject_ids`` that erasure deliberately keeps, per registered model that
    declares ``retained``: ``{label: {"rows": n, "why": text}}`` (preview and receipt)."""
    return {
        e.label: {
            "rows": e.kept(using=alias, subject_ids=subject_ids).count(),
            "why": e.retained_why,
        }
        for e in personal_data_models()
        if e.retained
    }


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
        "legal_hold": bool(active_hold(alias=alias, subject_ids=ids)),
    }


# --- the run ------------------------------------------------------------------------------


@dataclass
class _Run:
    request: PrivacyRequest
    alias: str
    ids: list[UUID]
    tokens: dict[str, str]
    actor: Actor
    batch_size: int

    @property
    def token(self) -> str:
        return self.request.subject_token


def request_erase_run(
    *, region: str, request_id: UUID | str, actor: Actor = SYSTEM, batch_size: int = BATCH_SIZE
) -> PrivacyRequest:
    """Run (or resume) the erasure of a request in ``processing``; other statuses: no-op."""
    alias = region_alias(region=region)
    request = PrivacyRequest.objects.using(alias).get(pk=request_id)
    if request.status != Status.PROCESSING or request.type != RequestType.ERASURE:
        return request
    if not request.erasure_subjects:
        request = _plan(request=request, actor=actor)
        if request.status != Status.PROCESSING:
            return request
    run = _Run(
        request=request,
        alias=alias,
        ids=[UUID(s["id"]) for s in request.erasure_subjects],
        tokens={s["id"]: s["token"] for s in request.erasure_subjects},
        actor=actor,
        batch_size=batch_size,
    )
    steps = erasure_steps()
    if _small(run):
        # Few rows: every step in one region transaction (all or nothing; a killed worker
        # leaves nothing half done), which saves a commit per step.
        with transaction.atomic(using=alias):
            return _run_steps(run=run, steps=steps)
    return _run_steps(run=run, steps=steps)


def _small(run: _Run) -> bool:
    return sum(erasure_counts(alias=run.alias, subject_ids=run.ids).values()) <= run.batch_size


def _run_steps(*, run: _Run, steps: list[Step]) -> PrivacyRequest:
    alias = run.alias
    request = run.request
    rows = _step_rows(run=run, steps=steps)
    for _round in range(SWEEP_ROUNDS):
        for position, step in enumerate(steps):
            if rows[step.name].status != StepStatus.DONE:
                _RUNNERS[step.kind](run, step, rows[step.name], position)
                step_progressed(request=request, step=step.name)
        leftovers = {k: v for k, v in erasure_counts(alias=alias, subject_ids=run.ids).items() if v}
        if not leftovers:
            break
        # rows arrived while we erased (e.g. an event ingested meanwhile): redo those steps
        names = [*leftovers, "sweep"]
        ErasureStep.objects.using(alias).filter(request_id=request.pk, name__in=names).update(
            status=StepStatus.PENDING
        )
        rows = _step_rows(run=run, steps=steps)
    else:
        raise ErasureIncompleteError(f"rows left after {SWEEP_ROUNDS} sweeps: {sorted(leftovers)}")
    return _complete(run=run, steps=steps)


def _plan(*, request: PrivacyRequest, actor: Actor) -> PrivacyRequest:
    alias = request._state.db
    with transaction.atomic(using=alias):
        request = PrivacyRequest.objects.using(alias).select_for_update().get(pk=request.pk)
        if request.status != Status.PROCESSING or request.erasure_subjects:
            return request
        subjects = (
            subjects_reached(alias=alias, subject_id=request.subject_id)
            if request.subject_id
            else []
        )
        hold = active_hold(alias=alias, subject_ids=[s.pk for s in subjects])
        if hold is not None:
            return request_transition(
                request=request,
                to=Status.REJECTED,
                actor=actor,
                reason=f"legal hold: {hold.reason}",
            )
        steps = erasure_steps()
        request.erasure_subjects = [{"id": str(s.pk), "token": s.audit_token} for s in subjects]
        request.progress_total = len(steps) + 1
        request.progress_done = 0
        request.heartbeat_at = timezone.now()
        request.save(
            using=alias,
            update_fields=[
                "erasure_subjects",
                "progress_total",
                "progress_done",
                "heartbeat_at",
                "updated_at",
            ],
        )
        ErasureStep.objects.using(alias).bulk_create(
            [
                ErasureStep(request_id=request.pk, position=i, name=step.name)
                for i, step in enumerate(steps)
            ],
            ignore_conflicts=True,
        )
    return request


def _step_rows(*, run: _Run, steps: list[Step]) -> dict[str, ErasureStep]:
    rows = {
        r.name: r for r in ErasureStep.objects.using(run.alias).filter(request_id=run.request.pk)
    }
    missing = [
        ErasureStep(request_id=run.request.pk, position=i, name=s.name)
        for i, s in enumerate(steps)
        if s.name not in rows
    ]
    if missing:  # the registry grew since the plan (a deploy between two runs)
        ErasureStep.objects.using(run.alias).bulk_create(missing, ignore_conflicts=True)
        rows = {
            r.name: r
            for r in ErasureStep.objects.using(run.alias).filter(request_id=run.request.pk)
        }
    return rows


def _advance(run: _Run, row: ErasureStep, *, added: int, done: bool) -> None:
    """In the caller's transaction: add ``added`` rows to the step, maybe mark it done (once)."""
    now = timezone.now()
    steps = ErasureStep.objects.using(run.alias).filter(pk=row.pk, status=StepStatus.PENDING)
    updates = {"rows": F("rows") + added}
    if row.started_at is None:
        updates["started_at"] = now
        row.started_at = now
    if done:
        updates.update(status=StepStatus.DONE, finished_at=now)
    if not steps.update(**updates):
        return  # another run finished the step: nothing more to record
    row.rows += added
    request_updates = {"heartbeat_at": now}
    if done:
        row.status = StepStatus.DONE
        request_updates["progress_done"] = F("progress_done") + 1
        audit_append(
            using=run.alias,
            entries=[
                request_entry(
                    request=run.request,
                    code=AuditCode.ERASURE_STEP_COMPLETED,
                    actor=run.actor,
                    subject_token=run.token,
                    payload={"step": row.name, "rows": row.rows},
                )
            ],
        )
    PrivacyRequest.objects.using(run.alias).filter(pk=run.request.pk).update(**request_updates)


def step_progressed(*, request: PrivacyRequest, step: str) -> None:
    """Called after each unit of work of a run (a step, a batch of a step, one subject's
    membership exits), inside the run's transaction when it takes one. Does nothing: a seam for
    tests, which replace it with a double (e.g. one that pauses, to kill a worker mid-job)."""


def _run_memberships_exit(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    for subject_id in run.ids:
        with transaction.atomic(using=run.alias):
            exited = memberships_exit_all(
                region=run.request.region, subject_id=subject_id, reason="erasure", actor=run.actor
            )
            _advance(run, row, added=exited, done=False)
        step_progressed(request=run.request, step=row.name)
    with transaction.atomic(using=run.alias):
        _advance(run, row, added=0, done=True)


def _run_suppression(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    with transaction.atomic(using=run.alias):
        added = suppressions_add(
            alias=run.alias,
            subject_ids=run.ids,
            request_of={subject_id: run.request.pk for subject_id in run.ids},
        )
        audit_append(
            using=run.alias,
            entries=[
                request_entry(
                    request=run.request,
                    code=AuditCode.SUPPRESSION_ADDED,
                    actor=run.actor,
                    subject_token=run.tokens.get(str(subject_id), run.token),
                    payload={"identifier_type": kind, "reason": "erasure"},
                )
                for kind, subject_id in added
            ],
        )
        _advance(run, row, added=len(added), done=True)


def _run_directory(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    # The control database is another database: delete there first (idempotent), then record.
    with transaction.atomic(using="default"):
        removed, _ = SubjectDirectory.objects.filter(subject_id__in=run.ids).delete()
    with transaction.atomic(using=run.alias):
        _advance(run, row, added=removed, done=True)


def _run_delete(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    entry = step.entry
    manager = entry.model._default_manager
    while True:
        with transaction.atomic(using=run.alias):
            pks = list(
                _filter(entry, run.alias, run.ids).values_list("pk", flat=True)[: run.batch_size]
            )
            deleted = 0
            if pks and is_postgresql(run.alias) and is_guarded(entry.model):
                deleted = sum(
                    erase_rows(
                        using=run.alias,
                        table=entry.model._meta.db_table,
                        subject_ids=run.ids,
                        request_ids=[run.request.pk],
                        ids=pks,
                    ).values()
                )
            elif pks:
                _, per_model = manager.using(run.alias).filter(pk__in=pks).delete()
                deleted = per_model.get(entry.label, 0)
            last = len(pks) < run.batch_size
            _advance(run, row, added=deleted, done=last)
        if last:
            return
        step_progressed(request=run.request, step=row.name)


def _run_key(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    """Destroy each subject's wrapped data key and append it to the ledger, atomically."""
    now = timezone.now()
    with transaction.atomic(using=run.alias):
        destroyed = 0
        entries = []
        for subject_id in run.ids:
            count, _ = SubjectKey.objects.using(run.alias).filter(subject_id=subject_id).delete()
            if not DestroyedKey.objects.using(run.alias).filter(subject_id=subject_id).exists():
                DestroyedKey.objects.using(run.alias).create(
                    subject_id=subject_id, destroyed_at=now, request_id=run.request.pk
                )
            if count:
                destroyed += count
                entries.append(
                    AuditEntry(
                        code=AuditCode.SUBJECT_KEY_DESTROYED,
                        actor=run.actor,
                        subject_token=run.tokens.get(str(subject_id), ""),
                        object_type="subject_key",
                        object_id=str(run.request.pk),
                        payload={"reason": "erasure"},
                    )
                )
        audit_append(using=run.alias, entries=entries)
        _advance(run, row, added=destroyed, done=True)


def _run_anonymise(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    """Requests stay (they are the proof) but lose the subject and its blind indexes."""
    with transaction.atomic(using=run.alias):
        changed = (
            PrivacyRequest.objects.using(run.alias)
            .filter(subject_id__in=run.ids)
            .update(subject_id=None, identifier_indexes=[])
        )
        _advance(run, row, added=changed, done=True)


def _run_sweep(run: _Run, step: Step, row: ErasureStep, position: int) -> None:
    with transaction.atomic(using=run.alias):
        _advance(run, row, added=0, done=True)


_RUNNERS: dict[str, Callable] = {
    "memberships_exit": _run_memberships_exit,
    "suppression": _run_suppression,
    "directory": _run_directory,
    "delete": _run_delete,
    "key": _run_key,
    "anonymise": _run_anonymise,
    "sweep": _run_sweep,
}


def _complete(*, run: _Run, steps: list[Step]) -> PrivacyRequest:
    alias = run.alias
    with transaction.atomic(using=alias):
        request = PrivacyRequest.objects.using(alias).select_for_update().get(pk=run.request.pk)
        if request.status != Status.PROCESSING:
            return request
        rows = {r.name: r for r in ErasureStep.objects.using(alias).filter(request_id=request.pk)}
        sweep = erasure_counts(alias=alias, subject_ids=run.ids)
        directory_left = SubjectDirectory.objects.filter(subject_id__in=run.ids).count()
        if any(sweep.values()) or directory_left:
            raise ErasureIncompleteError("the sweep found rows of the subject")
        now = timezone.now()
        receipt = receipt_body(
            request=request,
            now=now,
            subjects=len(run.ids),
            tables={s.entry.label: rows[s.name].rows for s in steps if s.entry is not None},
            memberships_exited=rows["memberships_exit"].rows,
            identifiers_suppressed=rows["suppression"].rows,
            directory_rows_removed=rows["directory"].rows,
            sweep={**sweep, "compliance.SubjectDirectory": directory_left},
            retained=erasure_retained(alias=alias, subject_ids=run.ids),
        )
        signature = receipt_sign(receipt)
        audit_append(
            using=alias,
            entries=[
                *[
                    request_entry(
                        request=request,
                        code=AuditCode.SUBJECT_ERASED,
                        actor=run.actor,
                        subject_token=token,
                        payload={"request_type": request.type, "regulation": request.regulation},
                    )
                    for token in run.tokens.values()
                ],
                request_entry(
                    request=request,
                    code=AuditCode.ERASURE_RECEIPT_ISSUED,
                    actor=run.actor,
                    payload={"receipt_id": receipt["receipt_id"], "subjects": len(run.ids)},
                ),
            ],
        )
        return request_transition(
            request=request,
            to=Status.COMPLETED,
            actor=run.actor,
            update_fields={
                "receipt": receipt,
                "receipt_signature": signature,
                "result_counts": receipt["tables"],
                "progress_done": request.progress_total,
                "completed_at": now,
                "subject_token": "",
                "erasure_subjects": [{"id": s["id"]} for s in request.erasure_subjects],
            },
        )
