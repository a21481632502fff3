"""Celery plumbing: route tasks by their ``region`` keyword, enqueue only after commit.

* ``route_task`` sends a task called with ``region="eu"`` to queue ``compliance.eu``; a task
  without ``region`` goes to ``compliance.control``; an unknown region is an error.
* ``enqueue_on_commit`` sends the task only when the region's transaction commits; on rollback
  nothing is sent.
* ``RegionalTask`` refuses to run a region's task on a worker started for other regions
  (``COMPLIANCE_WORKER_REGIONS``), as a second guard behind the queues.
"""

from __future__ import annotations

from celery import Task
from django.db import transaction

from compliance.conf import compliance_settings
from compliance.errors import InternalError
from compliance.regions import UnknownRegionError, region_alias


def queue_for(*, region: str | None) -> str:
    if region is None:
        return "compliance.control"
    region_alias(region=region)  # raises UnknownRegionError
    return f"compliance.{region}"


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router (``CELERY_TASK_ROUTES``): the queue of the task's ``region`` keyword."""
    region = (kwargs or {}).get("region")
    return {"queue": queue_for(region=region)}


def enqueue_on_commit(task, *, region: str, **kwargs) -> None:
    """Send ``task(region=region, **kwargs)`` once the region's current transaction commits."""
    alias = region_alias(region=region)
    payload = {**kwargs, "region": region}
    transaction.on_commit(lambda: task.apply_async(kwargs=payload), using=alias)


class WrongRegionWorkerError(InternalError):
    pass


class RegionalTask(Task):
    """Base for tasks that take ``region=``: acks late, and run only on that region's workers."""

    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        region = kwargs.get("region")
        if region is None:
            raise UnknownRegionError(f"task {self.name} needs the keyword argument region=")
        allowed = compliance_settings.WORKER_REGIONS
        if allowed and region not in allowed:
            raise WrongRegionWorkerError(
                f"task {self.name} for region {region!r} reached a worker for {', '.join(allowed)}"
            )
        return super().__call__(*args, **kwargs)
