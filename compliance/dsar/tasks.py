"""DSAR Celery tasks: thin (load, call a service, retry). All take ``region=`` and run on that
region's queue; jobs are idempotent and acknowledge late."""

from __future__ import annotations

import logging

from celery import shared_task

from compliance.dsar.services import bulk, callbacks, export, maintenance, processing
from compliance.tasking import RegionalTask

logger = logging.getLogger(__name__)
MAX_RETRIES = 3


@shared_task(base=RegionalTask, bind=True, name="dsar.request_process", max_retries=MAX_RETRIES)
def request_process(self, *, region: str, request_id: str) -> None:
    """Run the job of a request in ``processing``; after the retries it lands in ``failed``."""
    try:
        processing.request_process(region=region, request_id=request_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("request %s failed after %s retries", request_id, self.max_retries)
            processing.request_fail(
                region=region,
                request_id=request_id,
                reason=f"{exc.__class__.__name__}: {exc}"[:2000],
            )
            return
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1))


@shared_task(base=RegionalTask, bind=True, name="dsar.requests_erase_bulk", max_retries=MAX_RETRIES)
def requests_erase_bulk(self, *, region: str, request_ids: list[str] | None = None) -> dict:
    """Erase many approved erasure requests in one job (``bulk.requests_erase_bulk``); without
    ``request_ids``, every approved erasure no job has started yet. A redelivered or retried
    job skips the batches already committed. After the retries, the requests left in
    ``processing`` are picked up one by one by ``dsar.requests_resume_stuck``."""
    ids = request_ids if request_ids is not None else bulk.requests_erase_pending(region=region)
    try:
        result = bulk.requests_erase_bulk(region=region, request_ids=ids)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("bulk erasure of %s requests failed", len(ids))
            raise
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1))
    return {
        "completed": len(result.completed),
        "rejected": len(result.rejected),
        "skipped": len(result.skipped),
        "batches": result.batches,
    }


@shared_task(
    base=RegionalTask,
    name="dsar.callback_send",
    autoretry_for=(callbacks.CallbackError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=6,
)
def callback_send(*, region: str, request_id: str, status: str) -> None:
    callbacks.callback_deliver(region=region, request_id=request_id, status=status)


@shared_task(base=RegionalTask, name="dsar.requests_flag_due")
def requests_flag_due(*, region: str) -> None:
    maintenance.requests_flag_due(region=region)


@shared_task(base=RegionalTask, name="dsar.packages_expire")
def packages_expire(*, region: str) -> None:
    export.packages_expire(region=region)


@shared_task(base=RegionalTask, name="dsar.requests_resume_stuck")
def requests_resume_stuck(*, region: str, stale_after: float = 600) -> None:
    maintenance.requests_resume_stuck(region=region, stale_after=stale_after)
