"""Checking one event against a compiled tracking plan: violations, kept properties, verdict.

``plan_compiled(plan)`` builds (once per plan version and process) a ``Draft202012Validator``
per planned event. A planned object schema that says nothing about extra properties
(no ``additionalProperties``, ``unevaluatedProperties`` or ``patternProperties``) is closed
when compiled: properties it does not name are ``additional_property`` violations (set
``"additionalProperties": true`` to allow them).

``event_check`` never puts a property value in a violation: paths name keys (as in the plan
or as sent) and messages are built from the plan's schema keywords, not the validator's text.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from compliance.plans.models import Mode, TrackingPlan, ViolationType

MAX_PATH_LENGTH = 200
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_OPEN_KEYWORDS = ("additionalProperties", "unevaluatedProperties", "patternProperties")


@dataclass(frozen=True, slots=True)
class Violation:
    """``type`` (a ``ViolationType``), JSON ``path`` in the event, a message without values.
    ``location`` is the path as keys (for omitting a property), not reported."""

    type: str
    path: str
    message: str
    location: tuple = ()

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class CompiledPlan:
    plan_id: int
    source: str
    version: int
    mode: str
    validators: Mapping[str, Draft202012Validator]
    identifier_types: frozenset[str]


@dataclass(frozen=True, slots=True)
class Check:
    """What the plan says of one event: its violations, the properties to store (fewer in
    ``omit`` mode) and whether the plan refuses it (``block`` mode with a violation)."""

    violations: tuple[Violation, ...]
    properties: Mapping[str, Any]
    refused: bool


_CACHE: dict[tuple[int, str], CompiledPlan] = {}


def plan_compiled(*, plan: TrackingPlan, source: str) -> CompiledPlan:
    """The compiled plan of this version (cached per process by id and SHA-256)."""
    key = (plan.pk, plan.sha256)
    found = _CACHE.get(key)
    if found is None:
        found = CompiledPlan(
            plan_id=plan.pk,
            source=source,
            version=plan.version,
            mode=plan.mode,
            validators={
                e["name"]: Draft202012Validator(closed_schema(schema=e["schema"]))
                for e in plan.events
            },
            identifier_types=frozenset(plan.identifier_types),
        )
        if len(_CACHE) > 1000:  # versions are few; a bound keeps a long process small
            _CACHE.clear()
        _CACHE[key] = found
    return found


def plan_cached(*, plan_id: int, sha256: str) -> CompiledPlan | None:
    return _CACHE.get((plan_id, sha256))


def closed_schema(*, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` whose object schemas with ``properties`` and nothing said about
    other properties get ``"additionalProperties": false`` (nested ones too)."""
    closed = copy.deepcopy(dict(schema))
    _close(closed)
    return closed


def _close(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if "properties" in schema and not any(k in schema for k in _OPEN_KEYWORDS):
        schema["additionalProperties"] = False
    for sub in (schema.get("properties") or {}).values():
        _close(sub)
    _close(schema.get("items"))


def json_path(location: Sequence[Any]) -> str:
    """``$.properties.cart.items[0]`` (odd keys quoted: ``$.properties['a b']``), capped."""
    parts = ["$"]
    for key in location:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif _PLAIN_KEY.match(str(key)):
            parts.append(f".{key}")
        else:
            parts.append("[" + json.dumps(str(key), ensure_ascii=False) + "]")
    path = "".join(parts)
    return path if len(path) <= MAX_PATH_LENGTH else path[: MAX_PATH_LENGTH - 3] + "..."


def event_check(
    *,
    plan: CompiledPlan,
    name: str,
    properties: Mapping[str, Any],
    identifier_types: Sequence[str],
) -> Check:
    """Check one event (name, properties, the types of its identifiers) against ``plan``."""
    violations: list[Violation] = []
    validator = plan.validators.get(name)
    if validator is None:
        violations.append(
            Violation(ViolationType.UNPLANNED_EVENT, "$.event", "event not in the tracking plan")
        )
    else:
        seen: set[tuple[str, str]] = set()
        for error in validator.iter_errors(properties):
            for violation in _from_error(error):
                if (violation.type, violation.path) not in seen:
                    seen.add((violation.type, violation.path))
                    violations.append(violation)
    if plan.identifier_types:
        for index, kind in enumerate(identifier_types):
            if kind not in plan.identifier_types:
                violations.append(
                    Violation(
                        ViolationType.IDENTIFIER_TYPE_NOT_ALLOWED,
                        f"$.identifiers[{index}].type",
                        f"identifier type {kind} is not in the tracking plan",
                    )
                )
    kept = properties
    if plan.mode == Mode.OMIT:
        kept = {} if validator is None else _omitted(properties, violations)
    return Check(
        violations=tuple(violations),
        properties=kept,
        refused=plan.mode == Mode.BLOCK and bool(violations),
    )


def _from_error(error: ValidationError) -> list[Violation]:
    location = ("properties", *error.absolute_path)
    keyword, expected = error.validator, error.validator_value
    instance = error.instance
    if keyword == "required" and isinstance(instance, Mapping):
        return [
            Violation(
                ViolationType.REQUIRED_MISSING,
                json_path((*location, key)),
                "required property missing",
                (*location, key),
            )
            for key in expected
            if key not in instance
        ]
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(
        instance, Mapping
    ):
        named = set((error.schema or {}).get("properties") or {})
        patterns = list((error.schema or {}).get("patternProperties") or {})
        return [
            Violation(
                ViolationType.ADDITIONAL_PROPERTY,
                json_path((*location, key)),
                "property not in the tracking plan",
                (*location, key),
            )
            for key in instance
            if key not in named and not any(re.search(p, key) for p in patterns)
        ]
    if keyword == "type":
        wanted = expected if isinstance(expected, str) else " or ".join(map(str, expected))
        return [
            Violation(
                ViolationType.DATATYPE_MISMATCH,
                json_path(location),
                f"expected type {wanted}",
                location,
            )
        ]
    return [
        Violation(
            ViolationType.INVALID_VALUE,
            json_path(location),
            _invalid_message(keyword, expected),
            location,
        )
    ]


def _invalid_message(keyword: str, expected: Any) -> str:
    """What the plan's keyword asks, from the schema only (never the value sent)."""
    if keyword in ("anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref"):
        return f"does not match the plan's {keyword} schema"
    if keyword == "pattern":
        return "does not match the planned pattern"
    text = json.dumps(expected, ensure_ascii=False, default=str)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"fails {keyword} {text}"


def _omitted(properties: Mapping[str, Any], violations: list[Violation]) -> Mapping[str, Any]:
    """``properties`` without the ones the plan does not name (a copy, if any is dropped)."""
    drops = [v.location[1:] for v in violations if v.type == ViolationType.ADDITIONAL_PROPERTY]
    if not drops:
        return properties
    kept = copy.deepcopy(dict(properties))
    for location in drops:
        parent: Any = kept
        for key in location[:-1]:
            parent = parent[key]
        parent.pop(location[-1], None)
    return kept
