"""The project's Celery app with a slow erasure, for the kill -9 test (``-A tests.dsar.slow_worker``).

The double replaces ``erasure.step_progressed`` (the no-op production calls after each unit of
work): it appends the step's name to the file ``$SLOW_STEPS_LOG`` and pauses
``$SLOW_STEPS_PAUSE`` seconds (default 0.4), so that the test can see how far a run got and kill
the worker mid-job. Nothing else changes: the run takes the path of any other erasure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_prerun

from config.celery import app

__all__ = ["app"]


def _slow_step(*, request, step: str) -> None:
    with Path(os.environ["SLOW_STEPS_LOG"]).open("a") as log:
        log.write(f"{step}\n")
    time.sleep(float(os.environ.get("SLOW_STEPS_PAUSE", "0.4")))


@task_prerun.connect
def _install(**_kwargs) -> None:
    # installed when a task starts: Django is set up by then, in the process that runs it
    from compliance.dsar.services import erasure

    erasure.step_progressed = _slow_step
