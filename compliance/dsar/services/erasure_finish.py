"""The erasure engine's bookkeeping: step progress per request, the sweep, the receipts.

``Progress`` holds the ``ErasureStep`` rows of a batch (one per request and step) and the audit
events and change-feed notices owed since the last commit; ``save`` writes them all (one
upsert, one ``audit_append``, the notices after it). ``batch_finish`` sweeps, signs one receipt
per request and completes every request through ``requests_transition``, whose one audit
append carries the events still owed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from django.db.models import Count
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import AuditEntry, audit_append
from compliance.dsar.models import ErasureStep, PrivacyRequest, Status, StepStatus
from compliance.dsar.services.erasure_plan import ErasureBatch
from compliance.dsar.services.erasure_steps import Step, Unit, step_unit
from compliance.dsar.services.receipts import receipt_body, receipt_sign
from compliance.dsar.services.transitions import request_entry, requests_transition
from compliance.dsar.sql import (
    as_uuid,
    directory_rows,
    rows_count,
    rows_insert,
    subject_rows,
)
from compliance.errors import InternalError
from compliance.personal_data import personal_data_models
from segments.services.exits import ClosedStays, memberships_closed_publish

SWEEP_ROUNDS = 3
#: rows per statement when the sweep removes rows that arrived during the run
SWEEP_LIMIT = 100_000
DIRECTORY = "compliance.SubjectDirectory"


class ErasureIncompleteError(InternalError):
    """The sweep still found rows of the subject after the steps were redone."""


def erasure_counts(*, alias: str, subject_ids) -> dict[str, int]:
    """Rows per registered model held for ``subject_ids`` that erasure removes (the preview
    and the sweep; one statement); rows the registry declares ``retained`` are not counted."""
    return rows_count(
        using=alias,
        rows={
            e.label: subject_rows(using=alias, entry=e, subject_ids=subject_ids)
            for e in personal_data_models()
        },
    )


@dataclass
class Progress:
    """The steps of a batch: ONE ``ErasureStep`` row per step, on the batch's first request
    (for a batch of one, that request's own progress; rows: the batch's total), and the rows
    per request in memory (they end in each request's receipt). A batch of many requests
    therefore commits as one transaction (the bulk job's batches); only a batch of one is
    resumed from committed steps."""

    batch: ErasureBatch
    steps: list[Step]
    #: step name -> the lead request's row (saved or not yet)
    rows: dict[str, ErasureStep]
    #: (request id, step name) -> rows of that request
    counts: Counter = field(default_factory=Counter)
    entries: list[AuditEntry] = field(default_factory=list)
    closed: list[ClosedStays] = field(default_factory=list)

    @classmethod
    def load(cls, *, batch: ErasureBatch, steps: list[Step]) -> Progress:
        lead = batch.request_ids[0]
        saved = (
            [] if batch.fresh else ErasureStep.objects.using(batch.alias).filter(request_id=lead)
        )
        rows = {r.name: r for r in saved}
        for position, step in enumerate(steps):
            rows.setdefault(
                step.name, ErasureStep(request_id=lead, position=position, name=step.name)
            )
        counts = Counter({(lead, name): row.rows for name, row in rows.items()})
        return cls(batch=batch, steps=steps, rows=rows, counts=counts)

    def done(self, step: Step) -> bool:
        return self.rows[step.name].status == StepStatus.DONE

    def row(self, request_id: UUID, step: str) -> int:
        return self.counts[(request_id, step)]

    def add(self, *, step: Step, unit: Unit, at: datetime) -> None:
        """Count ``unit``'s rows to the requests owning the subjects; on the step's last unit,
        mark it done with its ``ERASURE_STEP_COMPLETED`` (about the batch's first request;
        payload: step, rows of the batch, requests), owed until the next save."""
        for sid, n in unit.rows.items():
            self.counts[(self.batch.owner(sid), step.name)] += n
        row = self.rows[step.name]
        row.rows += sum(unit.rows.values())
        row.started_at = row.started_at or at
        if unit.done and row.status != StepStatus.DONE:
            row.status, row.finished_at = StepStatus.DONE, at
            self.entries.append(
                request_entry(
                    request=self.batch.requests[0],
                    code=AuditCode.ERASURE_STEP_COMPLETED,
                    actor=self.batch.actor,
                    payload={
                        "step": step.name,
                        "rows": row.rows,
                        "requests": len(self.batch.requests),
                    },
                )
            )
        self.entries.extend(unit.entries)
        if unit.closed is not None and unit.closed.stays:
            self.closed.append(unit.closed)

    def save(self, *, at: datetime) -> None:
        """Write the progress and the events owed, in the caller's transaction (before it
        commits: a step is done in the transaction of its last write)."""
        self.save_rows()
        audit_append(using=self.batch.alias, entries=self.entries, at=at)
        self.publish()
        done = sum(self.done(step) for step in self.steps)
        PrivacyRequest.objects.using(self.batch.alias).filter(pk__in=self.batch.request_ids).update(
            heartbeat_at=at, progress_done=done
        )

    def save_rows(self) -> None:
        rows_insert(
            using=self.batch.alias,
            model=ErasureStep,
            columns=[
                "request_id",
                "name",
                "position",
                "status",
                "rows",
                "started_at",
                "finished_at",
            ],
            rows=[
                (r.request_id, r.name, r.position, r.status, r.rows, r.started_at, r.finished_at)
                for r in self.rows.values()
            ],
            unique=["request_id", "name"],
            update=["position", "status", "rows", "started_at", "finished_at"],
        )

    def publish(self) -> None:
        """The change-feed notices of the closed stays: after the audit append (lock order)."""
        for closed in self.closed:
            memberships_closed_publish(alias=self.batch.alias, closed=closed)
        self.entries, self.closed = [], []


def _sweep(*, batch: ErasureBatch, progress: Progress, at: datetime) -> dict[str, int]:
    """Count what is left (one statement per database); remove rows that arrived meanwhile
    again, up to ``SWEEP_ROUNDS`` rounds; mark the sweep done. The counts (all 0)."""
    directory = directory_rows(subject_ids=batch.ids)
    for _round in range(SWEEP_ROUNDS):
        counts = erasure_counts(alias=batch.alias, subject_ids=batch.ids)
        counts[DIRECTORY] = rows_count(using="default", rows={DIRECTORY: directory})[DIRECTORY]
        left = {label for label, n in counts.items() if n}
        if not left:
            break
        for step in progress.steps:
            label = step.entry.label if step.entry else DIRECTORY
            if label in left and step.kind in ("directory", "delete", "key", "anonymise"):
                unit = Unit(done=False)
                while not unit.done:
                    unit = step_unit(batch=batch, step=step, limit=SWEEP_LIMIT, at=at)
                    progress.add(step=step, unit=unit, at=at)
    else:
        raise ErasureIncompleteError(f"rows left after {SWEEP_ROUNDS} sweeps: {sorted(left)}")
    progress.add(step=progress.steps[-1], unit=Unit(), at=at)
    return counts


def _retained(batch: ErasureBatch) -> dict[UUID, dict[str, dict]]:
    """Per request: rows kept on purpose (registry ``retained``), ``{label: {"rows", "why"}}``;
    one grouped query per model that retains rows."""
    kept: dict[UUID, dict[str, dict]] = {pk: {} for pk in batch.request_ids}
    for entry in personal_data_models():
        if not entry.retained:
            continue
        per_request: Counter = Counter()
        rows = entry.kept(using=batch.alias, subject_ids=batch.ids).order_by()
        for sid, n in rows.values_list(entry.subject_field).annotate(n=Count("pk")):
            per_request[batch.owner(as_uuid(sid))] += n
        for pk in kept:
            kept[pk][entry.label] = {"rows": per_request[pk], "why": entry.retained_why}
    return kept


def _receipts(
    *,
    batch: ErasureBatch,
    steps: list[Step],
    progress: Progress,
    requests,
    sweep: dict[str, int],
    tokens: dict[UUID, list[str]],
    receipt_ids: dict[UUID, str],
    now: datetime,
) -> dict[UUID, dict]:
    """Once the completion's entries are appended: the change feed's notices (the feed's lock
    order), then each request's signed receipt (which counts the notices kept), as fields to
    save with the status."""
    progress.publish()
    retained = _retained(batch)
    signed = {}
    for request in requests:
        pk = request.pk
        receipt = receipt_body(
            request=request,
            now=now,
            subjects=len(tokens[pk]),
            tables={s.entry.label: progress.row(pk, s.name) for s in steps if s.entry},
            memberships_exited=progress.row(pk, "memberships_exit"),
            identifiers_suppressed=progress.row(pk, "suppression"),
            directory_rows_removed=progress.row(pk, "directory"),
            sweep=sweep,
            retained=retained[pk],
            mode=batch.mode,
            receipt_id=receipt_ids[pk],
        )
        signed[pk] = {
            "receipt": receipt,
            "receipt_signature": receipt_sign(receipt),
            "result_counts": receipt["tables"],
        }
    return signed


def batch_finish(
    *, batch: ErasureBatch, steps: list[Step], progress: Progress
) -> list[PrivacyRequest]:
    """Sweep and complete every request through ``requests_transition``: one audit append (the
    events owed, ``SUBJECT_ERASED`` per subject, ``ERASURE_RECEIPT_ISSUED`` and the status
    change per request), then the change-feed notices and each request's signed receipt
    (``_receipts``), saved with the status in ONE statement; in the caller's transaction."""
    now = timezone.now()
    sweep = _sweep(batch=batch, progress=progress, at=now)
    tokens: dict[UUID, list[str]] = defaultdict(list)
    for token, owner in batch.subjects.values():
        tokens[owner].append(token)
    receipt_ids = {r.pk: str(uuid4()) for r in batch.requests}
    entries = []
    for request in batch.requests:
        entries.extend(
            request_entry(
                request=request,
                code=AuditCode.SUBJECT_ERASED,
                actor=batch.actor,
                subject_token=token,
                payload={"request_type": request.type, "regulation": request.regulation},
            )
            for token in tokens[request.pk]
        )
        entries.append(
            request_entry(
                request=request,
                code=AuditCode.ERASURE_RECEIPT_ISSUED,
                actor=batch.actor,
                payload={
                    "receipt_id": receipt_ids[request.pk],
                    "subjects": len(tokens[request.pk]),
                },
            )
        )
    progress.save_rows()
    total = len(steps) + 1
    done = requests_transition(
        requests=batch.requests,
        to=Status.COMPLETED,
        actor=batch.actor,
        update_fields={
            "progress_done": total,
            "progress_total": total,
            "completed_at": now,
            "heartbeat_at": now,
            "subject_token": "",
            "subject_id": None,
            "identifier_indexes": [],
        },
        per_request={
            r.pk: {"erasure_subjects": [{"id": s["id"]} for s in r.erasure_subjects]}
            for r in batch.requests
        },
        entries=[*progress.entries, *entries],
        after_audit=lambda requests: _receipts(
            batch=batch,
            steps=steps,
            progress=progress,
            requests=requests,
            sweep=sweep,
            tokens=tokens,
            receipt_ids=receipt_ids,
            now=now,
        ),
    )
    return done
