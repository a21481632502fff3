"""Reads of stored events and rejection counters (always of one region)."""

from __future__ import annotations

import json
from datetime import date

from django.db.models import Sum

from compliance import crypto
from compliance.events.models import Event, RejectionCount
from compliance.events.services.ingest import properties_aad
from compliance.regions import region_alias


def event_properties(*, event: Event, data_key: bytes) -> dict:
    """Decrypt an event's properties with its subject's data key
    (``compliance.services.subjects.subject_data_key``). Raises ``crypto.DecryptionError``
    when the key is not the subject's (or was destroyed and replaced). Callers that show the
    result to a person must audit the access."""
    plaintext = crypto.decrypt(
        data_key=data_key,
        ciphertext=bytes(event.properties_encrypted),
        aad=properties_aad(subject_id=event.subject_id),
    )
    return json.loads(plaintext)


def rejection_totals(*, region: str, since: date | None = None) -> dict[tuple[str, str], int]:
    """Rejected events per (source, reason) in a region, from ``since`` (a day) on."""
    qs = RejectionCount.objects.using(region_alias(region=region))
    if since is not None:
        qs = qs.filter(day__gte=since)
    rows = qs.values("source", "reason").annotate(total=Sum("count"))
    return {(row["source"], row["reason"]): row["total"] for row in rows}
