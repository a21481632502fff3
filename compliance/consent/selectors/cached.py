"""The active purposes and event sources, and each source's current tracking plan, cached per
process (the hot paths read them on every request: consent writes, event batches, evaluations).

``configuration()`` answers from the process's copy while the configuration's *stamp* (row count
and latest ``updated_at`` of purposes and sources, row count and highest id of tracking plans,
whose versions are only ever added: ONE small query on ``default``) is unchanged, and reloads
the three tables (three queries) when it moved. The stamp is read once per HTTP request (the first
read; later reads in the same request trust it) and on every call outside a request. So a change
made anywhere (another worker, another machine, the admin) is seen by the next request of every
process; a save in this process drops the copy at once (``post_save``/``post_delete``).

Only a queryset ``update()`` that changes neither the count nor ``updated_at`` would go unseen:
the services and the admin save instances, and ``configuration_invalidate()`` is there for
anything else.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from django.db import connections

from compliance.consent.models import EventSource, Purpose
from compliance.plans.models import TrackingPlan

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


class _State(threading.local):
    #: true between ``request_started`` and ``request_finished`` once the stamp was read
    verified = False
    in_request = False


_local = _State()
_lock = threading.Lock()
_copy: Configuration | None = None


def configuration() -> Configuration:
    """The active purposes and sources (see the module docstring for freshness)."""
    global _copy
    held = _copy
    if held is not None and _local.in_request and _local.verified:
        return held
    stamp = _stamp()
    if held is None or held.stamp != stamp:
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
