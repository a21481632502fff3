"""A tracking plan proposed from what a source sent: event names and property types, never
values.

``plan_suggest(source=..., days=...)`` reads the source's stored events of the last ``days``
days in each region, decrypts each event's properties there with its subject's key (events of
erased subjects cannot be read and are skipped), and keeps only each property's JSON type and
whether every event of the name had it. The result is a plan document for
``PUT /api/v1/sources/{key}/tracking-plan/`` in ``flag`` mode, for an owner to review.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.utils import timezone

from compliance import crypto
from compliance.events.models import Event
from compliance.events.services.ingest import properties_aad
from compliance.models import SubjectKey
from compliance.regions import region_alias, regions

_CHUNK = 2000


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class _Shape:
    """Per event name: how many events, and per property its types and how often present."""

    def __init__(self) -> None:
        self.events = 0
        self.types: dict[str, set[str]] = defaultdict(set)
        self.present: Counter[str] = Counter()

    def add(self, properties: dict) -> None:
        self.events += 1
        for key, value in properties.items():
            self.types[key].add(json_type(value))
            self.present[key] += 1

    def schema(self) -> dict:
        properties = {}
        for key in sorted(self.types):
            kinds = self.types[key]
            if kinds == {"integer", "number"}:
                kinds = {"number"}
            properties[key] = {"type": sorted(kinds)[0] if len(kinds) == 1 else sorted(kinds)}
        required = sorted(k for k, n in self.present.items() if n == self.events)
        return {"type": "object", "properties": properties, "required": required}


def plan_suggest(*, source: str, days: int) -> tuple[dict, dict[str, int]]:
    """A plan document (``flag`` mode) from the source's events of the last ``days`` days,
    and counts: ``events`` read, ``unreadable`` (erased subjects) skipped."""
    since = timezone.now() - timedelta(days=days)
    shapes: dict[str, _Shape] = defaultdict(_Shape)
    unreadable = 0
    for region in regions():
        unreadable += _region_shapes(region=region, source=source, since=since, shapes=shapes)
    events = [
        {
            "name": name,
            "description": f"suggested from {shape.events} events of the last {days} days",
            "owner": "",
            "schema": shape.schema(),
        }
        for name, shape in sorted(shapes.items())
    ]
    document = {"mode": "flag", "events": events, "identifier_types": []}
    return document, {"events": sum(s.events for s in shapes.values()), "unreadable": unreadable}


def _region_shapes(*, region: str, source: str, since, shapes: dict[str, _Shape]) -> int:
    """Add the region's events to ``shapes``; return how many could not be decrypted."""
    alias = region_alias(region=region)
    rows = (
        Event.objects.using(alias)
        .filter(source=source, received_at__gte=since)
        .values_list("subject_id", "name", "properties_encrypted")
        .order_by("subject_id")
    )
    keys: dict = {}
    unreadable = 0
    for subject_id, name, ciphertext in rows.iterator(chunk_size=_CHUNK):
        if subject_id not in keys:
            keys.clear()  # ordered by subject: one key held at a time
            wrapped = (
                SubjectKey.objects.using(alias)
                .filter(subject_id=subject_id)
                .values_list("wrapped_key", flat=True)
                .first()
            )
            keys[subject_id] = wrapped and crypto.unwrap_data_key(
                region=region, subject_id=str(subject_id), wrapped=bytes(wrapped)
            )
        key = keys[subject_id]
        if not key:
            unreadable += 1
            continue
        try:
            properties = json.loads(
                crypto.decrypt(
                    data_key=key,
                    ciphertext=bytes(ciphertext),
                    aad=properties_aad(subject_id=subject_id),
                )
            )
        except crypto.DecryptionError:
            unreadable += 1
            continue
        shapes[name].add(properties if isinstance(properties, dict) else {})
    return unreadable
