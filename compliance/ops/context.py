"""The request id of the work in progress: a web request, or a Celery task it caused.

``request_id_accept`` keeps an incoming ``X-Request-ID`` only when it is a safe token (letters,
digits, ``-``, ``_``, ``.``; 8 to 64 characters), else makes a uuid4 hex. The id lives in a
context variable: set by the request middleware, put into the headers of every task published
while it is set (``before_task_publish``), and set again in the worker around the task
(``task_prerun``/``task_postrun``), so log lines of both carry it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

from celery.signals import before_task_publish, task_postrun, task_prerun

#: the Celery message header carrying the id
HEADER = "request_id"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")
_task_tokens: dict[str, Token] = {}


def request_id_accept(*, incoming: str | None) -> str:
    """``incoming`` when it is a safe token, else a new uuid4 hex."""
    if incoming and _SAFE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@before_task_publish.connect
def _publish_with_request_id(sender=None, headers=None, **kwargs) -> None:
    request_id = current_request_id.get()
    if request_id and headers is not None and not headers.get(HEADER):
        headers[HEADER] = request_id


def _task_request_id(task) -> str:
    request = getattr(task, "request", None)
    if request is None:
        return ""
    value = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    return value if isinstance(value, str) and _SAFE.fullmatch(value) else ""


@task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    request_id = _task_request_id(task)
    if request_id and task_id:  # eager tasks keep the caller's id (no message, no header)
        _task_tokens[task_id] = current_request_id.set(request_id)


@task_postrun.connect
def _task_finished(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        try:
            current_request_id.reset(token)
        except ValueError:  # set in another context (a thread pool): clear instead
            current_request_id.set("")
