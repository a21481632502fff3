"""A tracking plan document as sent to ``PUT /api/v1/sources/{key}/tracking-plan/`` (or saved
in the admin): validation with field paths, and its canonical JSON and SHA-256.

``plan_document_parse(data=...)`` returns a normalised :class:`PlanDocument` or raises
:class:`PlanInvalid` whose ``fields`` name every problem by path (``mode``,
``events[2].schema``, ``identifier_types[0]``). Each event's schema is checked against the
JSON Schema draft 2020-12 meta-schema (``Draft202012Validator.check_schema``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from compliance.errors import InputError
from compliance.models import IdentifierType
from compliance.plans.models import Mode

MAX_EVENTS = 500
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 2000
MAX_SCHEMA_BYTES = 64 * 1024
_KEYS = frozenset({"mode", "events", "identifier_types"})
_EVENT_KEYS = frozenset({"name", "description", "owner", "schema"})


class PlanInvalid(InputError):
    """The plan document fails validation; ``fields`` maps each bad field's path to why."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("Invalid tracking plan: " + ", ".join(sorted(fields)))
        self.fields = fields


@dataclass(frozen=True)
class PlanDocument:
    """A valid plan: events sorted by name, identifier types sorted."""

    mode: str
    events: tuple[dict[str, Any], ...]
    identifier_types: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "events": list(self.events),
            "identifier_types": list(self.identifier_types),
        }

    @property
    def sha256(self) -> str:
        return plan_sha256(document=self.as_json())


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes the plan's SHA-256 is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plan_sha256(*, document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def plan_document_parse(*, data: Any) -> PlanDocument:
    """Validate ``{"mode", "events": [{"name", "description", "owner", "schema"}],
    "identifier_types": [...]}``; raise ``PlanInvalid`` naming every bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise PlanInvalid({"non_field_errors": ["expected an object"]})
    for key in data:
        if key not in _KEYS:
            errors.setdefault(str(key), []).append("unknown field")
    mode = data.get("mode", Mode.FLAG)
    if mode not in Mode.values:
        errors.setdefault("mode", []).append("one of: " + ", ".join(Mode.values))
    events = _events(data.get("events"), errors)
    types = _identifier_types(data.get("identifier_types", []), errors)
    if errors:
        raise PlanInvalid(errors)
    return PlanDocument(
        mode=mode,
        events=tuple(sorted(events, key=lambda e: e["name"])),
        identifier_types=tuple(sorted(types)),
    )


def _events(value: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        errors.setdefault("events", []).append("required: a list of events")
        return []
    if len(value) > MAX_EVENTS:
        errors.setdefault("events", []).append(f"at most {MAX_EVENTS} events")
        return []
    out, seen = [], set()
    for index, raw in enumerate(value):
        path = f"events[{index}]"
        if not isinstance(raw, Mapping):
            errors.setdefault(path, []).append("expected an object")
            continue
        for key in raw:
            if key not in _EVENT_KEYS:
                errors.setdefault(f"{path}.{key}", []).append("unknown field")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            errors.setdefault(f"{path}.name", []).append(
                f"required: a non-empty string of at most {MAX_NAME_LENGTH} characters"
            )
            continue
        name = name.strip()
        if name in seen:
            errors.setdefault(f"{path}.name", []).append("the event is planned twice")
        seen.add(name)
        texts = {key: raw.get(key, "") for key in ("description", "owner")}
        for key, text in texts.items():
            if not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH:
                errors.setdefault(f"{path}.{key}", []).append(
                    f"a string of at most {MAX_TEXT_LENGTH} characters"
                )
        schema = raw.get("schema", {"type": "object"})
        problem = schema_problem(schema=schema)
        if problem:
            errors.setdefault(f"{path}.schema", []).append(problem)
        out.append({"name": name, **texts, "schema": schema})
    return out


def schema_problem(*, schema: Any) -> str:
    """Why ``schema`` is not a usable JSON Schema (draft 2020-12) of properties, or ``""``."""
    if not isinstance(schema, Mapping):
        return "a JSON Schema (draft 2020-12) object"
    try:
        if len(canonical_json(schema)) > MAX_SCHEMA_BYTES:
            return f"at most {MAX_SCHEMA_BYTES} bytes of JSON"
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        return (
            f"not a valid JSON Schema (draft 2020-12){' at ' + where if where else ''}: "
            + (exc.message[:300])
        )
    except (TypeError, ValueError):
        return "not JSON-serialisable"
    if schema.get("type", "object") != "object":
        return 'an event\'s properties are an object: "type" must be "object"'
    return ""


def _identifier_types(value: Any, errors: dict[str, list[str]]) -> list[str]:
    if not isinstance(value, list):
        errors.setdefault("identifier_types", []).append("a list of identifier types")
        return []
    out = []
    for index, item in enumerate(value):
        if item not in IdentifierType.values:
            errors.setdefault(f"identifier_types[{index}]", []).append(
                "one of: " + ", ".join(IdentifierType.values)
            )
        elif item not in out:
            out.append(item)
    return out
