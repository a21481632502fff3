"""The Celery app: one queue per region (``compliance.<region>``) plus ``compliance.control``.

Queues are declared from ``COMPLIANCE_REGIONS``; routing to any other queue is an error
(``task_create_missing_queues = False``). Start a region's worker with
``celery -A config worker -Q compliance.eu``.
"""

import logging
import os
from importlib import import_module

from celery import Celery
from celery.signals import worker_ready
from django.apps import apps
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

from compliance.conf import compliance_settings
from compliance.ops import context as _request_ids  # noqa: F401  (request ids through tasks)

# ``embedded://``: the crash-safe file broker of the embedded default (compliance/broker.py)
TRANSPORT_ALIASES.setdefault("embedded", "compliance.broker:Transport")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("compliance")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _queues() -> list[Queue]:
    names = ["compliance.control", *(f"compliance.{r}" for r in compliance_settings.REGIONS)]
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names]


def _beat_schedule() -> dict:
    """Merge ``BEAT_SCHEDULE`` of every installed app's ``schedule`` module."""
    schedule: dict = {}
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.schedule")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedule":
                raise
            continue
        schedule.update(module.BEAT_SCHEDULE)
    return schedule


app.conf.task_queues = _queues()
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _load_beat_schedule(sender, **kwargs) -> None:
    sender.conf.beat_schedule = _beat_schedule()


@worker_ready.connect
def _heartbeat_on_start(sender, **kwargs) -> None:
    """A worker says it is there as soon as it starts (then every 5 minutes under beat): the
    heartbeat of each region it consumes is written here, in the worker, not sent as a task."""
    # models: config.celery is imported with the settings, before the app registry is ready
    from compliance.tasks import worker_heartbeat

    consumed = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    for queue in sorted(consumed - {"compliance.control"}):
        try:
            worker_heartbeat(region=queue.split(".", 1)[1])
        except Exception:  # never keeps a worker from starting
            logging.getLogger(__name__).warning("start heartbeat failed", exc_info=True)
