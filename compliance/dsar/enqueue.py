"""The DSAR jobs services enqueue, named by task name: ``dsar.tasks`` imports the services,
never the reverse (a signature by name needs no import of the task's module)."""

from __future__ import annotations

from celery import current_app

from compliance import tasking

REQUEST_PROCESS = "dsar.request_process"
CALLBACK_SEND = "dsar.callback_send"


def job_on_commit(name: str, *, region: str, **kwargs) -> None:
    """Send job ``name`` (``region=region, **kwargs``) once the region's transaction commits."""
    tasking.enqueue_on_commit(current_app.signature(name), region=region, **kwargs)


def job_now(name: str, *, region: str, **kwargs) -> None:
    """Send job ``name`` (``region=region, **kwargs``) at once, outside any transaction."""
    current_app.signature(name).apply_async(kwargs={**kwargs, "region": region})
