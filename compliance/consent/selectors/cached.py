"""The active purposes and event sources, and each source's current tracking plan, cached per
process (the hot paths read them on every request: consent writes, event batches, evaluations).

``configuration()`` answers from the process's copy while nothing changed, and reloads the three
tables (three queries) when something did. How it knows:

* **PostgreSQL, outside a transaction:** each thread LISTENs on its ``default`` connection to the
  channel ``compliance_configuration``, which a statement trigger on the three tables notifies
  at commit (migration ``plans.0002``). Looking costs no round trip: the notices already in the
  connection's socket are read. A new connection (first use, ``DB_CONN_MAX_AGE``, a reconnect)
  starts listening and compares the stamp once, for what changed before it listened.
* **Otherwise** (SQLite, or inside a transaction, where a LISTEN could be rolled back): the
  configuration's *stamp* (row count and latest ``updated_at`` of purposes and sources, row
  count and highest id of tracking plans, whose versions are only ever added: ONE small query on
  ``default``), read once per HTTP request (later reads in the same request trust it) and on
  every call outside a request. Only a queryset ``update()`` that changes neither the count nor
  ``updated_at`` goes unseen there: the services and the admin save instances, and
  ``configuration_invalidate()`` is there for anything else.

So a change made anywhere (another worker, another machine, the admin) is seen by the next
request of every process; a save in this process drops the copy at once
(``post_save``/``post_delete``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import psycopg
from django.db import connections

from compliance.consent.models import EventSource, Purpose
from compliance.plans.models import TrackingPlan

#: notified by the tables' trigger at commit (migration ``plans.0002_configuration_notify``)
CHANNEL = "compliance_configuration"
_P, _S, _T = Purpose._meta.db_table, EventSource._meta.db_table, TrackingPlan._meta.db_table
_STAMP_SQL = (
    f"SELECT (SELECT count(*) FROM {_P}), (SELECT max(updated_at) FROM {_P}), "
    f"(SELECT count(*) FROM {_S}), (SELECT max(updated_at) FROM {_S}), "
    f"(SELECT count(*) FROM {_T}), (SELECT max(id) FROM {_T})"
)


@dataclass(frozen=True)
class Configuration:
    """Active purposes and sources by key, current plans by source key (read-only mappings; do
    not change the instances)."""

    purposes: Mapping[str, Purpose]
    sources: Mapping[str, EventSource]
    #: source key -> (id, sha256) of its current (highest) tracking plan version, if it has one
    plans: Mapping[str, tuple[int, str]]
    stamp: tuple


class _News(enum.Enum):
    QUIET = "nothing changed since this thread last looked"
    CHANGED = "a change was announced"
    UNKNOWN = "not listening here: compare the stamp"


class _State(threading.local):
    #: true between ``request_started`` and ``request_finished`` once freshness was checked
    verified = False
    in_request = False
    #: the raw ``default`` connection this thread LISTENs on (``None``: none yet)
    listening: object | None = None


_local = _State()
_lock = threading.Lock()
_copy: Configuration | None = None


def configuration() -> Configuration:
    """The active purposes and sources (see the module docstring for freshness)."""
    global _copy
    held = _copy
    if held is not None and _local.in_request and _local.verified:
        return held
    news = _news()
    if held is not None and news is _News.QUIET:
        _local.verified = _local.in_request
        return held
    stamp = _stamp()
    if held is None or held.stamp != stamp or news is _News.CHANGED:
        held = _loaded(stamp=stamp)
        with _lock:
            _copy = held
    _local.verified = _local.in_request
    return held


def _loaded(*, stamp: tuple) -> Configuration:
    # here, not at the top: the plans selectors read this module
    from compliance.plans.selectors.plans import current_plan_ids

    return Configuration(
        purposes=MappingProxyType({p.key: p for p in Purpose.objects.filter(is_active=True)}),
        sources=MappingProxyType({s.key: s for s in EventSource.objects.filter(is_active=True)}),
        plans=MappingProxyType(current_plan_ids()),
        stamp=stamp,
    )


def configuration_invalidate(**_) -> None:
    """Drop this process's copy (a receiver of ``post_save``/``post_delete`` too)."""
    global _copy
    with _lock:
        _copy = None
    _local.verified = False


def request_started(**_) -> None:
    _local.in_request, _local.verified = True, False


def request_finished(**_) -> None:
    _local.in_request, _local.verified = False, False


def _stamp() -> tuple:
    with connections["default"].cursor() as cursor:
        cursor.execute(_STAMP_SQL)
        return tuple(cursor.fetchone())


def _news() -> _News:
    """What this thread's ``default`` connection heard since it last looked (see the module
    docstring). Starts listening on a PostgreSQL connection that does not yet, outside a
    transaction only; any trouble with the connection answers ``UNKNOWN`` (the stamp decides)."""
    connection = connections["default"]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return _News.UNKNOWN
    connection.ensure_connection()
    raw = connection.connection
    if _local.listening is not raw:
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        _local.listening = raw
        return _News.UNKNOWN  # what changed before LISTEN: the stamp says
    try:
        heard = bool(list(raw.notifies(timeout=0)))  # reads the socket; no round trip
    except psycopg.Error:
        _local.listening = None
        return _News.UNKNOWN
    return _News.CHANGED if heard else _News.QUIET
