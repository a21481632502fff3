"""Validation of an event batch as sent to ``POST /api/v1/events/``, before anything is written.

``event_batch_parse(data=...)`` checks the whole batch and either returns one
:class:`EventInput` per event or raises :class:`EventBatchInvalid` whose ``fields`` name every
problem by path (``events[3].purpose``, ``events[0].identifiers[1].value``); identifier values
are never echoed. Unknown purposes and sources are looked up in the cached
configuration (``consent.selectors.cached``).

Hand-written rather than a DRF serializer: a batch of 1,000 nested events is on the hot path,
and DRF's per-field machinery costs more than the consent check itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from compliance.consent.selectors.cached import configuration
from compliance.errors import InputError
from compliance.identifiers import Identifier, IdentifierError, identifier_normalize

MAX_BATCH = 1000
MAX_IDENTIFIERS = 10
MAX_NAME_LENGTH = 200
MAX_CLIENT_ID_LENGTH = 128
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_TC_STRING_LENGTH = 10_000
#: stop collecting after this many problems (a batch of 1,000 bad events stays a small answer)
MAX_REPORTED_ERRORS = 50

_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_EVENT_KEYS = frozenset(
    {
        "source",
        "identifiers",
        "event",
        "properties",
        "time",
        "purpose",
        "consent_signal",
        "jurisdiction",
        "id",
    }
)


@dataclass(frozen=True, slots=True)
class ConsentSignal:
    """A raw consent signal carried by an event: a TCF TC string, or GPC (``Sec-GPC: 1``)."""

    tc_string: str | None = None
    gpc: bool = False

    @property
    def kind(self) -> str:
        return "tcf" if self.tc_string is not None else "gpc"


@dataclass(frozen=True, slots=True)
class EventInput:
    """One validated event. ``identifiers`` are normalised; ``occurred_at`` is aware UTC."""

    source: str
    identifiers: tuple[Identifier, ...]
    name: str
    purpose: str
    occurred_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    consent_signal: ConsentSignal | None = None
    jurisdiction: str | None = None
    client_event_id: str | None = None


class EventBatchInvalid(InputError):
    """The batch fails validation; ``fields`` maps each bad field's path to why."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("Invalid input: " + ", ".join(sorted(fields)))
        self.fields = fields


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    @property
    def full(self) -> bool:
        return len(self.fields) >= MAX_REPORTED_ERRORS


def known_keys(*, purposes: set[str], sources: set[str]) -> tuple[set[str], set[str]]:
    """The subset of ``purposes`` and ``sources`` that exist and are active (the process's
    cached configuration)."""
    config = configuration()
    return purposes & config.purposes.keys(), sources & config.sources.keys()


def event_batch_parse(*, data: Any) -> list[EventInput]:
    """Validate a request body ``{"events": [...]}``; raise ``EventBatchInvalid`` if anything
    is wrong (nothing is written by a batch that fails here)."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise EventBatchInvalid({"non_field_errors": ['expected an object {"events": [...]}']})
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise EventBatchInvalid({"events": ["required: a list of events"]})
    if not raw_events:
        raise EventBatchInvalid({"events": ["must hold at least one event"]})
    if len(raw_events) > MAX_BATCH:
        raise EventBatchInvalid(
            {"events": [f"at most {MAX_BATCH} events per batch, got {len(raw_events)}"]}
        )
    parsed: list[dict[str, Any] | None] = []
    for index, raw in enumerate(raw_events):
        if errors.full:
            break
        parsed.append(_parse_event(raw, f"events[{index}]", errors))
    if not errors.full:
        _check_keys(parsed, errors)
    if errors.fields:
        raise EventBatchInvalid(errors.fields)
    return [EventInput(**item) for item in parsed if item is not None]


def _check_keys(parsed: list[dict[str, Any] | None], errors: _Errors) -> None:
    """Unknown purposes and sources, for every event that named one (even if it has other
    problems, so that one answer names them all)."""
    present = [p for p in parsed if p is not None]
    known_purposes, known_sources = known_keys(
        purposes={p["purpose"] for p in present if p["purpose"]},
        sources={p["source"] for p in present if p["source"]},
    )
    for index, item in enumerate(parsed):
        if item is None:
            continue
        if item["purpose"] and item["purpose"] not in known_purposes:
            errors.add(f"events[{index}].purpose", "unknown or inactive purpose")
        if item["source"] and item["source"] not in known_sources:
            errors.add(f"events[{index}].source", "unknown or inactive event source")
        if errors.full:
            return


def _parse_event(raw: Any, path: str, errors: _Errors) -> dict[str, Any] | None:
    """The event's fields (``None`` if it is not an object); problems go to ``errors``."""
    if not isinstance(raw, Mapping):
        errors.add(path, "expected an object")
        return None
    for key in raw:
        if key not in _EVENT_KEYS:
            errors.add(f"{path}.{key}", "unknown field")
    out: dict[str, Any] = {
        "source": _key(raw.get("source"), f"{path}.source", errors),
        "purpose": _key(raw.get("purpose"), f"{path}.purpose", errors),
        "name": _name(raw.get("event"), f"{path}.event", errors),
        "identifiers": _identifiers(raw.get("identifiers"), f"{path}.identifiers", errors),
        "occurred_at": _time(raw.get("time"), f"{path}.time", errors),
        "properties": _properties(raw.get("properties", {}), f"{path}.properties", errors),
        "consent_signal": _signal(raw.get("consent_signal"), f"{path}.consent_signal", errors),
        "jurisdiction": _jurisdiction(raw.get("jurisdiction"), f"{path}.jurisdiction", errors),
        "client_event_id": _client_id(raw.get("id"), f"{path}.id", errors),
    }
    return out


def _key(value: Any, path: str, errors: _Errors) -> str:
    if not isinstance(value, str) or not value.strip():
        errors.add(path, "required: a non-empty string")
        return ""
    return value.strip()


def _name(value: Any, path: str, errors: _Errors) -> str:
    if not isinstance(value, str) or not value.strip():
        errors.add(path, "required: the event name, a non-empty string")
        return ""
    if len(value) > MAX_NAME_LENGTH:
        errors.add(path, f"at most {MAX_NAME_LENGTH} characters")
    return value.strip()


def _identifiers(value: Any, path: str, errors: _Errors) -> tuple[Identifier, ...]:
    if not isinstance(value, list) or not value:
        errors.add(path, "required: a non-empty list of {type, value}")
        return ()
    if len(value) > MAX_IDENTIFIERS:
        errors.add(path, f"at most {MAX_IDENTIFIERS} identifiers per event")
        return ()
    out: list[Identifier] = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"type", "value"}:
            errors.add(item_path, 'expected an object {"type", "value"}')
            continue
        try:
            out.append(identifier_normalize(identifier_type=item["type"], value=item["value"]))
        except IdentifierError as exc:
            errors.add(f"{item_path}.{exc.field}", str(exc))
    return tuple(out)


def _time(value: Any, path: str, errors: _Errors) -> datetime | None:
    if not isinstance(value, str):
        errors.add(path, "required: an ISO 8601 date-time with a UTC offset")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.add(path, "not an ISO 8601 date-time")
        return None
    if moment.tzinfo is None:
        errors.add(path, "needs a UTC offset, e.g. 2025-01-31T12:00:00Z")
        return None
    return moment.astimezone(UTC)


def _properties(value: Any, path: str, errors: _Errors) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        errors.add(path, "expected an object")
        return {}
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        errors.add(path, "not JSON-serialisable")
        return {}
    if size > MAX_PROPERTIES_BYTES:
        errors.add(path, f"at most {MAX_PROPERTIES_BYTES} bytes of JSON")
    return value


def _signal(value: Any, path: str, errors: _Errors) -> ConsentSignal | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or len(value) != 1:
        errors.add(path, 'expected {"tc_string": "..."} or {"gpc": true}')
        return None
    if "tc_string" in value:
        tc = value["tc_string"]
        if not isinstance(tc, str) or not tc.strip() or len(tc) > MAX_TC_STRING_LENGTH:
            errors.add(f"{path}.tc_string", "a non-empty TC string")
            return None
        return ConsentSignal(tc_string=tc.strip())
    if "gpc" in value:
        if value["gpc"] is not True:
            errors.add(f"{path}.gpc", "only true is meaningful (Sec-GPC: 1)")
            return None
        return ConsentSignal(gpc=True)
    errors.add(path, 'expected {"tc_string": "..."} or {"gpc": true}')
    return None


def _jurisdiction(value: Any, path: str, errors: _Errors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _JURISDICTION.match(value.strip().upper()):
        errors.add(path, 'an ISO 3166 country or subdivision code, e.g. "FR" or "US-CA"')
        return None
    return value.strip().upper()


def _client_id(value: Any, path: str, errors: _Errors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLIENT_ID_LENGTH:
        errors.add(path, f"a non-empty string of at most {MAX_CLIENT_ID_LENGTH} characters")
        return None
    return value.strip()
