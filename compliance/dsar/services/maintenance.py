"""Beat jobs: deadline flags, and the safety net for requests whose worker died."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, audit_append
from compliance.dsar.enqueue import REQUEST_PROCESS, job_now
from compliance.dsar.models import TERMINAL_STATUSES, PrivacyRequest, Status
from compliance.dsar.services.transitions import request_entry
from compliance.regions import region_alias

SYSTEM = Actor.system("dsar-beat")
DUE_SOON = timedelta(days=7)


def requests_flag_due(*, region: str, now=None, actor: Actor = SYSTEM) -> dict[str, int]:
    """Flag open requests due within 7 days (``due_soon``) and overdue ones (``overdue``), each
    once per state, with ``REQUEST_DUE_FLAGGED``. Returns counts per flag."""
    alias = region_alias(region=region)
    now = now or timezone.now()
    flagged = {"due_soon": 0, "overdue": 0}
    open_requests = PrivacyRequest.objects.using(alias).exclude(status__in=TERMINAL_STATUSES)
    for flag, qs in (
        ("overdue", open_requests.filter(due_at__lt=now).exclude(due_flag="overdue")),
        (
            "due_soon",
            open_requests.filter(due_at__gte=now, due_at__lte=now + DUE_SOON, due_flag=""),
        ),
    ):
        for request in qs:
            with transaction.atomic(using=alias):
                updated = (
                    PrivacyRequest.objects.using(alias)
                    .filter(pk=request.pk, due_flag=request.due_flag)
                    .update(due_flag=flag)
                )
                if not updated:
                    continue
                audit_append(
                    using=alias,
                    entries=[
                        request_entry(
                            request=request,
                            code=AuditCode.REQUEST_DUE_FLAGGED,
                            actor=actor,
                            payload={
                                "request_type": request.type,
                                "regulation": request.regulation,
                                "flag": flag,
                                "due_at": request.due_at.isoformat(),
                            },
                        )
                    ],
                )
                flagged[flag] += 1
    return flagged


def requests_stuck(*, region: str, stale_after: float, now=None) -> list[PrivacyRequest]:
    """Processing requests whose job has not reported for ``stale_after`` seconds."""
    now = now or timezone.now()
    return list(
        PrivacyRequest.objects.using(region_alias(region=region)).filter(
            status=Status.PROCESSING, heartbeat_at__lt=now - timedelta(seconds=stale_after)
        )
    )


def requests_resume_stuck(*, region: str, stale_after: float = 600) -> int:
    """Re-enqueue the job of every stuck request (a worker killed with its message lost, e.g. on
    the filesystem broker). Jobs are idempotent, so a duplicate delivery is harmless."""
    stuck = requests_stuck(region=region, stale_after=stale_after)
    for request in stuck:
        PrivacyRequest.objects.using(request._state.db).filter(pk=request.pk).update(
            heartbeat_at=timezone.now()
        )
        job_now(REQUEST_PROCESS, region=region, request_id=str(request.pk))
    return len(stuck)
