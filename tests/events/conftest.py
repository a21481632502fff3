"""Helpers for event ingest tests: API clients, payloads, counts (subjects and consent come
from ``tests.factories``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from django.db import connections
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.models import ApiClient

ACTOR = Actor.system("test")
_counter = itertools.count()
#: a minute ago: recent enough for grants captured at the event's time to be live
TIME = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")


def new_email(tag: str = "p") -> str:
    return f"{tag}{next(_counter)}@example.org"


def event(
    email: str,
    *,
    purpose: str = "measurement",
    source: str = "web",
    name: str = "page_view",
    properties: dict | None = None,
    **extra,
) -> dict:
    body = {
        "source": source,
        "identifiers": [{"type": "email", "value": email}],
        "event": name,
        "properties": properties if properties is not None else {"path": "/pricing"},
        "time": TIME,
        "purpose": purpose,
    }
    body.update(extra)
    return body


def api_client(*scopes: str) -> APIClient:
    token = f"ctk_evt_{next(_counter)}"
    ApiClient.objects.create(
        name=f"client-{token}", token_hash=token_hash(token), scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post(client: APIClient, events: list[dict]):
    return client.post("/api/v1/events/", {"events": events}, format="json")


def count(alias: str, table: str = "events_event") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


def batch_audits(alias: str) -> list[dict]:
    rows = AuditEvent.objects.using(alias).filter(code=AuditCode.EVENT_BATCH_INGESTED)
    return list(rows.order_by("seq").values("object_type", "object_id", "payload", "actor_type"))


def when(text: str = TIME) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
