"""Bulk erasure: many approved erasure requests of one region in one job.

``requests_erase_bulk(region=, request_ids=, actor=)`` hands the requests, ``batch_size``
(default 500) at a time, to the one erasure engine (``erasure.erasure_run``): each batch is
planned, erased step by step with ONE set-based statement per step over all its subjects,
swept, and completed with one signed receipt per request (``"mode": "bulk"``), in ONE region
transaction whose audit events are ONE ``audit_append`` (a person with a very large amount of
data makes a big transaction: the per-request job commits every 1,000 rows instead).

**Resumable and idempotent**: a finished request is skipped (running a batch again does
nothing); a worker killed mid-batch loses that batch's open transaction and the redelivered job
redoes it. Requests the per-request job has planned are skipped here and finished by that job
(``dsar.requests_resume_stuck`` re-enqueues a stuck one). Two requests of one batch for the same person:
the first one carries the counts, the second's receipt says ``subjects: 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from compliance.audit.services.append import Actor
from compliance.dsar.models import PrivacyRequest, RequestType, Status
from compliance.dsar.services.erasure import erasure_run
from compliance.regions import region_alias

BULK_BATCH = 500
#: rows per statement of a bulk batch; a batch of many requests is one transaction
BULK_ROWS = 10**9
SYSTEM = Actor.system("erasure")


@dataclass
class BulkErasureResult:
    """Request ids (as strings) completed, rejected (-> reason) and skipped (-> why)."""

    completed: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    batches: int = 0


def requests_erase_pending(*, region: str, limit: int = 10_000) -> list[str]:
    """Approved erasure requests (``processing``) that no job has started yet, oldest first."""
    rows = (
        PrivacyRequest.objects.using(region_alias(region=region))
        .filter(type=RequestType.ERASURE, status=Status.PROCESSING)
        .order_by("received_at")
        .values_list("id", "erasure_subjects")
    )
    return [str(pk) for pk, planned in rows[:limit] if not planned]


def requests_erase_bulk(
    *,
    region: str,
    request_ids: Sequence[UUID | str],
    actor: Actor = SYSTEM,
    batch_size: int = BULK_BATCH,
) -> BulkErasureResult:
    """Erase the given approved erasure requests, ``batch_size`` per batch (see the module
    docstring). Idempotent; returns what happened to each request."""
    alias = region_alias(region=region)
    ids = list(dict.fromkeys(UUID(str(r)) for r in request_ids))
    result = BulkErasureResult()
    for start in range(0, len(ids), batch_size):
        batch = erasure_run(
            alias=alias,
            request_ids=ids[start : start + batch_size],
            actor=actor,
            batch_size=BULK_ROWS,
            skip_planned=True,
            mode="bulk",
        )
        result.completed.extend(str(r.pk) for r in batch.requests)
        result.rejected.update(batch.rejected)
        result.skipped.update(batch.skipped)
        result.batches += 1
    return result
