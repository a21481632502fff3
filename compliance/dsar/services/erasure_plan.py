"""The plan of an erasure batch: which requests run, which subjects they reach, legal holds.

A batch is one or more erasure requests of one region (a single request is a batch of one).
``batch_load`` locks the requests (``SELECT ... FOR UPDATE``: concurrent runs of the same
requests queue), keeps those in ``processing``, reaches every subject (the one merged-subject
search, ``subjects_merged``), rejects requests under an active legal hold (the one hold check)
and records the plan of the others (``erasure_subjects``: id and audit token of each subject,
which the database guard ``compliance_erase_rows`` also reads). A request planned by an earlier
run resumes with the subjects it recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from django.utils import timezone

from compliance.audit.services.append import Actor
from compliance.dsar.models import LegalHold, PrivacyRequest, RequestType, Status
from compliance.dsar.services.transitions import requests_transition
from compliance.dsar.sql import as_uuid, instances_update, subjects_tree
from compliance.models import Subject


@dataclass
class ErasureBatch:
    """The requests of one run and the subjects they erase."""

    alias: str
    actor: Actor
    requests: list[PrivacyRequest]
    #: subject id -> (audit token, id of the request that erases it)
    subjects: dict[UUID, tuple[str, UUID]]
    #: receipt ``mode`` ("bulk" for the bulk job), or None
    mode: str | None = None
    #: requests left alone (id -> why) and rejected under a legal hold (id -> reason)
    skipped: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    #: planned by this run just now (no step is recorded yet)
    fresh: bool = False

    @property
    def ids(self) -> list[UUID]:
        return list(self.subjects)

    @property
    def request_ids(self) -> list[UUID]:
        return [r.pk for r in self.requests]

    def owner(self, subject_id: UUID) -> UUID:
        return self.subjects[subject_id][1]

    def token(self, subject_id: UUID) -> str:
        return self.subjects[subject_id][0]


def subjects_merged(*, alias: str, roots: Mapping[UUID, UUID]) -> dict[UUID, tuple[str, UUID]]:
    """Each root subject (subject id -> owner) and, transitively, every subject merged into it
    (stitched identities): subject id -> (audit token, the root's owner; a subject that is a
    root itself keeps its own). One statement, whatever the number of roots and levels."""
    owner = {as_uuid(k): v for k, v in roots.items()}
    found: dict[UUID, tuple[str, UUID]] = {}
    for sid, token, root in subjects_tree(using=alias, roots=list(owner)):
        found.setdefault(sid, (token, owner[root]))
    return found


def subjects_reached(*, alias: str, subject_id: UUID) -> list[Subject]:
    """The subject and, transitively, every subject merged into it (stitched identities)."""
    reached = subjects_merged(alias=alias, roots={subject_id: subject_id})
    return list(Subject.objects.using(alias).filter(pk__in=list(reached)))


def holds_active(*, alias: str, subject_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Subject id -> reason of its oldest active legal hold (subjects without one: absent)."""
    holds: dict[UUID, str] = {}
    for sid, reason in (
        LegalHold.objects.using(alias)
        .filter(subject_id__in=list(subject_ids), active=True)
        .order_by("-created_at")
        .values_list("subject_id", "reason")
    ):
        holds[as_uuid(sid)] = reason  # the oldest hold is written last and wins
    return holds


def _why_not(request: PrivacyRequest | None, skip_planned: bool) -> str | None:
    if request is None:
        return "unknown request"
    if request.type != RequestType.ERASURE:
        return f"not an erasure ({request.type})"
    if request.status != Status.PROCESSING:
        return f"status {request.status}"
    if skip_planned and request.erasure_subjects:
        return "started by the per-request job"
    return None


def batch_load(
    *,
    alias: str,
    request_ids: Sequence[UUID],
    actor: Actor,
    steps: int,
    skip_planned: bool = False,
) -> ErasureBatch:
    """Lock and plan the batch (in the caller's transaction); ``steps`` is the number of steps
    (``progress_total`` is one more, the receipt). Requests planned by another run are skipped
    with ``skip_planned`` (the bulk job), else resumed."""
    locked = PrivacyRequest.objects.using(alias).select_for_update().filter(pk__in=request_ids)
    found = {r.pk: r for r in locked}
    batch = ErasureBatch(alias=alias, actor=actor, requests=[], subjects={})
    for pk in request_ids:
        why = _why_not(found.get(pk), skip_planned)
        if why:
            batch.skipped[str(pk)] = why
        else:
            batch.requests.append(found[pk])
    new = [r for r in batch.requests if not r.erasure_subjects]
    batch.fresh = len(new) == len(batch.requests)
    for request in batch.requests:
        for s in request.erasure_subjects:
            batch.subjects.setdefault(UUID(s["id"]), (s.get("token", ""), request.pk))
    roots = {r.subject_id: r.pk for r in reversed(new) if r.subject_id is not None}
    reached = subjects_merged(alias=alias, roots=roots)
    for sid, value in reached.items():
        batch.subjects.setdefault(sid, value)
    if new:
        _reject_held(batch, holds_active(alias=alias, subject_ids=list(reached)))
        _plan(batch, [r for r in new if str(r.pk) not in batch.rejected], steps)
    return batch


def _reject_held(batch: ErasureBatch, holds: dict[UUID, str]) -> None:
    reasons = {batch.owner(sid): f"legal hold: {reason}" for sid, reason in holds.items()}
    held = [r for r in batch.requests if r.pk in reasons]
    if not held:
        return
    requests_transition(
        requests=held,
        to=Status.REJECTED,
        actor=batch.actor,
        per_request={r.pk: {"failure_reason": reasons[r.pk]} for r in held},
    )
    batch.rejected.update({str(r.pk): reasons[r.pk] for r in held})
    batch.requests = [r for r in batch.requests if r.pk not in reasons]
    batch.subjects = {s: v for s, v in batch.subjects.items() if v[1] not in reasons}


def _plan(batch: ErasureBatch, new: list[PrivacyRequest], steps: int) -> None:
    now = timezone.now()
    planned: dict[UUID, list[dict]] = defaultdict(list)
    for sid, (token, owner) in batch.subjects.items():
        planned[owner].append({"id": str(sid), "token": token})
    for request in new:
        request.erasure_subjects = planned[request.pk]
        request.progress_total = steps + 1
        request.progress_done = 0
        request.heartbeat_at = request.updated_at = now
    shared = ["progress_total", "progress_done", "heartbeat_at", "updated_at"]
    instances_update(
        using=batch.alias, instances=new, fields=["erasure_subjects", *shared], shared=shared
    )
