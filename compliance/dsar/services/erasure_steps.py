"""The steps of an erasure: each is ONE set-based statement (or a fixed few) over all subjects
of a batch, in the caller's transaction.

A unit returns the rows it touched per subject, whether the step is finished (a delete step
removes at most ``limit`` rows per unit and is finished when a unit removes fewer), and the
audit entries it owes (appended by the runner, once per commit). Tables behind the database
guards (consent events, memberships: ``compliance_erase_rows`` on PostgreSQL) go in one
statement, whatever ``limit``. Steps, in order:
``memberships_exit`` (every open stay closed, reason ``erasure``: ``memberships_close``),
``suppression`` (each identity's blind index -> ``Suppression``, and to the control database's
mirror ``SuppressedIdentifier``), ``directory`` (the control database's rows, deleted in the
statement that adds their blind indexes to the mirror), then every registered model in erasure
order (``SubjectKey``: destroyed and written to the ``DestroyedKey`` ledger; ``PrivacyRequest``:
kept as proof but stripped of the subject), and the ``sweep`` (run by the runner).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Count
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import AuditEntry
from compliance.dsar.models import DestroyedKey, PrivacyRequest
from compliance.dsar.services.erasure_plan import ErasureBatch
from compliance.dsar.services.suppression import suppressions_add
from compliance.dsar.sql import (
    as_uuid,
    directory_delete_suppressing,
    guarded_erase,
    rows_delete,
    rows_delete_all,
    rows_insert,
    subject_rows,
)
from compliance.models import SubjectKey
from compliance.personal_data import PersonalDataModel, personal_data_models
from segments.services.exits import ClosedStays, memberships_close


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # memberships_exit | suppression | directory | delete | key | anonymise | sweep
    entry: PersonalDataModel | None = None


@dataclass
class Unit:
    """What one unit of a step did."""

    rows: Counter = field(default_factory=Counter)  # subject id -> rows
    done: bool = True
    entries: list[AuditEntry] = field(default_factory=list)
    closed: ClosedStays | None = None


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


def _entry(
    batch: ErasureBatch, code: AuditCode, sid: UUID, object_type: str, payload
) -> AuditEntry:
    return AuditEntry(
        code=code,
        actor=batch.actor,
        subject_token=batch.token(sid),
        object_type=object_type,
        object_id=str(batch.owner(sid)),
        payload=payload,
    )


def _memberships_exit(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    tokens = {sid: token for sid, (token, _) in batch.subjects.items()}
    closed = memberships_close(
        alias=batch.alias,
        subject_ids=batch.ids,
        reason="erasure",
        actor=batch.actor,
        at=at,
        tokens=tokens,
    )
    return Unit(
        rows=Counter(sid for _, sid, _ in closed.stays), entries=closed.entries, closed=closed
    )


def _suppression(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    added = suppressions_add(
        alias=batch.alias,
        region=batch.alias,  # a region's alias is its name (compliance.regions)
        subject_ids=batch.ids,
        request_of={sid: batch.owner(sid) for sid in batch.ids},
    )
    payload = {"reason": "erasure"}
    return Unit(
        rows=Counter(sid for _, sid in added),
        entries=[
            _entry(
                batch,
                AuditCode.SUPPRESSION_ADDED,
                sid,
                "privacy_request",
                {"identifier_type": kind, **payload},
            )
            for kind, sid in added
        ],
    )


def _directory(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    # the control database is another database: its rows go in its own statement, which also
    # adds their blind indexes to the suppression mirror (never neither listed nor suppressed)
    return Unit(rows=directory_delete_suppressing(subject_ids=batch.ids, at=at))


def _delete_rows(batch: ErasureBatch, entry: PersonalDataModel, limit: int) -> Unit:
    guarded = guarded_erase(
        using=batch.alias, model=entry.model, subject_ids=batch.ids, request_ids=batch.request_ids
    )
    if guarded is not None:
        return Unit(rows=guarded)
    rows = subject_rows(using=batch.alias, entry=entry, subject_ids=batch.ids)
    removed = rows_delete(using=batch.alias, rows=rows, limit=limit)
    return Unit(rows=removed, done=sum(removed.values()) < limit)


def _delete(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    return _delete_rows(batch, step.entry, limit)


def _key(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    """Destroy the subjects' wrapped data keys and write them to the ledger, atomically."""
    return _ledger(batch, _delete_rows(batch, step.entry, limit), at)


def _ledger(batch: ErasureBatch, unit: Unit, at: datetime) -> Unit:
    """Write the batch's subjects to the destroyed-keys ledger; ``unit``, the keys' delete,
    gets a ``SUBJECT_KEY_DESTROYED`` entry per subject whose key it removed."""
    rows_insert(
        using=batch.alias,
        model=DestroyedKey,
        columns=["subject_id", "destroyed_at", "request_id"],
        rows=[(sid, at, batch.owner(sid)) for sid in batch.ids],
    )
    unit.entries = [
        _entry(batch, AuditCode.SUBJECT_KEY_DESTROYED, sid, "subject_key", {"reason": "erasure"})
        for sid in batch.ids
        if unit.rows.get(sid)
    ]
    return unit


def _anonymise(batch: ErasureBatch, step: Step, limit: int, at: datetime) -> Unit:
    """Requests stay (they are the proof) but lose the subject and its blind indexes."""
    rows = PrivacyRequest.objects.using(batch.alias).filter(subject_id__in=batch.ids)
    if len(batch.requests) == 1:  # one owner: the UPDATE's own count is enough
        changed = rows.update(subject_id=None, identifier_indexes=[])
        return Unit(rows=Counter({batch.ids[0]: changed}) if changed else Counter())
    counts = Counter(
        {
            as_uuid(sid): n
            for sid, n in rows.order_by().values_list("subject_id").annotate(n=Count("pk"))
        }
    )
    if counts:
        rows.update(subject_id=None, identifier_indexes=[])
    return Unit(rows=counts)


UNITS: dict[str, Callable[[ErasureBatch, Step, int, datetime], Unit]] = {
    "memberships_exit": _memberships_exit,
    "suppression": _suppression,
    "directory": _directory,
    "delete": _delete,
    "key": _key,
    "anonymise": _anonymise,
}


#: the kinds of the registry's steps, which ``units_together`` runs in one pass
TOGETHER = ("delete", "key", "anonymise")


def units_together(*, batch: ErasureBatch, steps: list[Step], at: datetime) -> list[Unit]:
    """One unit per step of ``steps`` (kinds ``TOGETHER``), each its step's last: every delete
    (the keys' too) in ONE statement (``rows_delete_all``; no row limit: the runner counts
    the rows first), then the anonymisation and the key ledger, in the caller's transaction."""
    deletes = [step for step in steps if step.kind != "anonymise"]
    parts = [subject_rows(using=batch.alias, entry=s.entry, subject_ids=batch.ids) for s in deletes]
    removed = rows_delete_all(
        using=batch.alias, parts=parts, subject_ids=batch.ids, request_ids=batch.request_ids
    )
    by_step = {step.name: rows for step, rows in zip(deletes, removed, strict=True)}
    units = []
    for step in steps:
        if step.kind == "anonymise":
            units.append(_anonymise(batch, step, 0, at))
        elif step.kind == "key":
            units.append(_ledger(batch, Unit(rows=by_step[step.name]), at))
        else:
            units.append(Unit(rows=by_step[step.name]))
    return units


def step_unit(*, batch: ErasureBatch, step: Step, limit: int, at: datetime | None = None) -> Unit:
    """Run one unit of ``step`` over every subject of ``batch`` (at most ``limit`` rows)."""
    return UNITS[step.kind](batch, step, limit, at or timezone.now())
