"""Small helpers for the DSAR tests: API clients, officers, request bodies, a person with
every kind of data, where a person's traces remain (single people, consent, segments and
requests come from ``tests.factories``)."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from rest_framework.test import APIClient

from compliance.api.auth import token_hash
from compliance.audit.models import AuditEvent
from compliance.models import ApiClient, Subject
from compliance.roles import PRIVACY_OFFICER, roles_sync
from tests.factories import ACTOR, ConsentFactory, SubjectFactory

ALL_SCOPES = ["dsar:write", "dsar:read"]


def api_client(*, scopes=ALL_SCOPES, user=None, name=None) -> tuple[ApiClient, APIClient]:
    token = "ctk_" + secrets.token_urlsafe(16)
    client = ApiClient.objects.create(
        name=name or f"client-{uuid.uuid4().hex[:8]}",
        token_prefix=token[:12],
        token_hash=token_hash(token),
        scopes=list(scopes),
        user=user,
        callback_secret=secrets.token_hex(32),
    )
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, http


def officer_client() -> tuple[ApiClient, APIClient]:
    roles_sync()
    user = get_user_model().objects.create_user(
        username=f"officer-{uuid.uuid4().hex[:6]}", is_staff=True
    )
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    return api_client(scopes=["dsar:approve", "dsar:read"], user=user)


def open_body(email: str, type: str = "erasure", **extra) -> dict:
    body = {
        "type": type,
        "regulation": "gdpr",
        "identifiers": [{"type": "email", "value": email}],
        "verification_method": "email_confirmation",
        "jurisdiction": "FR",
    }
    body.update(extra)
    return body


def post_open(http: APIClient, body: dict, key: str | None = None):
    return http.post(
        "/api/v1/requests/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


def codes(alias: str, object_id: str | None = None) -> list[int]:
    qs = AuditEvent.objects.using(alias).order_by("seq")
    if object_id:
        qs = qs.filter(object_id=object_id)
    return list(qs.values_list("code", flat=True))


def raw_count(alias: str, table: str, column: str, value) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = %s", [value])
        return cursor.fetchone()[0]


def verify_chain(alias: str) -> None:
    """Recompute the audit chain of ``alias`` (what audit_verify does)."""
    from compliance.audit.hashing import GENESIS, canonical, chain_hash, format_time

    prev = GENESIS
    for position, event in enumerate(AuditEvent.objects.using(alias).order_by("seq"), start=1):
        assert event.seq == position, f"gap at {position}"
        prev = chain_hash(
            prev_hash=prev,
            canonical_bytes=canonical(
                chain_id=alias,
                seq=event.seq,
                occurred_at=format_time(event.occurred_at),
                code=event.code,
                actor_type=event.actor_type,
                actor_id=event.actor_id,
                subject_token=event.subject_token,
                object_type=event.object_type,
                object_id=event.object_id,
                payload=event.payload,
            ),
        )
        assert prev == event.hash, f"entry {event.seq} does not verify"


# --- a person with every kind of personal data --------------------------------------------


def event_body(email: str, *, name: str = "page_view", properties=None) -> dict:
    from datetime import UTC, datetime, timedelta

    when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    return {
        "source": "web",
        "identifiers": [{"type": "email", "value": email}],
        "event": name,
        "properties": properties if properties is not None else {"path": "/pricing"},
        "time": when,
        "purpose": "measurement",
        "jurisdiction": "FR",
    }


def rich_person(email: str, anonymous_id: str, *, segments=(), events: int = 2):
    """An EU person with everything the toolkit can hold about them:

    * two subjects stitched into one: first seen by ``anonymous_id`` (with a consent record),
      then by ``email``; a call carrying both merges the newer one into the older;
    * consent events and state (audience_segmentation, measurement granted on the web);
    * ``events`` behavioral events ingested through ``events_ingest`` (encrypted properties);
    * a membership in each of ``segments`` (``memberships_apply``).

    Returns ``(survivor, merged)``.
    """
    from compliance.consent.services.stitching import subject_resolve_many
    from compliance.events.parsing import event_batch_parse
    from compliance.events.services.ingest import events_ingest
    from segments.services.memberships import memberships_apply

    anonymous = SubjectFactory(
        identifier_type="anonymous_id", value=anonymous_id, consents=["storage"]
    )
    known = SubjectFactory(email=email)
    survivor = subject_resolve_many(
        identifiers=[("email", email), ("anonymous_id", anonymous_id)],
        jurisdiction="FR",
        actor=ACTOR,
    )
    merged_id = known.pk if survivor.pk == anonymous.pk else anonymous.pk
    assert Subject.objects.using("eu").get(pk=merged_id).merged_into == survivor.pk
    for purpose in ("audience_segmentation", "measurement"):
        ConsentFactory(subject=survivor, purpose=purpose, decision="granted")
    if events:
        batch = [
            event_body(email, name=f"view_{i}", properties={"path": f"/p/{i}", "plan": "pro"})
            for i in range(events)
        ]
        result = events_ingest(events=event_batch_parse(data={"events": batch}), actor=ACTOR)
        assert [o.status for o in result.outcomes] == ["accepted"] * events, result.outcomes
    for seg in segments:
        applied = memberships_apply(segment=seg, enters=[survivor.pk], exits=[], actor=ACTOR)
        assert applied.entered == [survivor.pk], applied.refused
    return survivor, Subject.objects.using("eu").get(pk=merged_id)


def occurrences(needles) -> dict:
    """Where any of ``needles`` (subject ids, e-mails, ...) still appears: raw SQL over every
    column of every table of EVERY database, each value cast to text (UUIDs are looked for
    both as stored by SQLite, 32 hex digits, and in their canonical form).
    Returns ``{(alias, table, column): rows}``."""
    patterns = set()
    for needle in needles:
        if isinstance(needle, uuid.UUID):
            patterns.update({needle.hex, str(needle)})
        else:
            patterns.add(str(needle))
    found = {}
    for alias in connections:
        connection = connections[alias]
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                for column in connection.introspection.get_table_description(cursor, table):
                    for pattern in patterns:
                        cursor.execute(
                            f'SELECT COUNT(*) FROM "{table}" '
                            f'WHERE CAST("{column.name}" AS TEXT) LIKE %s',
                            [f"%{pattern}%"],
                        )
                        count = cursor.fetchone()[0]
                        if count:
                            key = (alias, table, column.name)
                            found[key] = found.get(key, 0) + count
    return found
