"""Changes to the global consent configuration, audited on the control chain ("default").

The admin's ``save_model`` calls these; payloads name the changed fields, never values that
could carry personal data (there are none in configuration, but the shape stays small).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import EventSource, NoticeVersion, Purpose
from compliance.errors import InputError


def purpose_save(*, purpose: Purpose, actor: Actor, changed: Iterable[str] = ()) -> Purpose:
    """Create or change a purpose; a change of its lawful bases, jurisdictions, mappings or
    expiry bumps ``version`` (events record the version they were given under)."""
    changed = sorted(set(changed))
    created = purpose.pk is None
    material = set(changed) - {"name", "description", "version"}
    with transaction.atomic(using="default"):
        if not created and material:
            purpose.version = (purpose.version or 1) + 1
        purpose.save(using="default")
        audit_append(
            using="default",
            entries=[
                AuditEntry(
                    code=AuditCode.PURPOSE_CHANGED,
                    actor=actor,
                    object_type="purpose",
                    object_id=purpose.key,
                    payload={
                        "created": created,
                        "fields": changed,
                        "version": purpose.version,
                    },
                )
            ],
        )
    return purpose


def source_save(*, source: EventSource, actor: Actor, changed: Iterable[str] = ()) -> EventSource:
    """Create or change an event source (audited ``SOURCE_CHANGED``)."""
    created = source.pk is None
    with transaction.atomic(using="default"):
        source.save(using="default")
        audit_append(
            using="default",
            entries=[
                AuditEntry(
                    code=AuditCode.SOURCE_CHANGED,
                    actor=actor,
                    object_type="event_source",
                    object_id=source.key,
                    payload={
                        "created": created,
                        "fields": sorted(set(changed)),
                        "consent_scope": source.consent_scope,
                    },
                )
            ],
        )
    return source


class NoticeLockedError(InputError):
    """A published notice's text cannot change: publish a new version instead."""


def notice_save(
    *, notice: NoticeVersion, actor: Actor, changed: Iterable[str] = (), publish: bool = False
) -> NoticeVersion:
    """Save a notice version; ``publish`` (or a ``published_at`` set) audits
    ``NOTICE_PUBLISHED`` with the text's SHA-256. Published text is immutable."""
    changed = sorted(set(changed))
    if notice.pk is not None and "text" in changed:
        stored = NoticeVersion.objects.get(pk=notice.pk)
        if stored.published_at is not None:
            raise NoticeLockedError("a published notice's text is fixed; add a new version")
    newly_published = False
    with transaction.atomic(using="default"):
        if publish and notice.published_at is None:
            notice.published_at = timezone.now()
        if notice.pk is None:
            newly_published = notice.published_at is not None
        elif notice.published_at is not None:
            stored = NoticeVersion.objects.get(pk=notice.pk)
            newly_published = stored.published_at is None
        notice.save(using="default")
        code = AuditCode.NOTICE_PUBLISHED if newly_published else AuditCode.CONFIGURATION_CHANGED
        audit_append(
            using="default",
            entries=[
                AuditEntry(
                    code=code,
                    actor=actor,
                    object_type="notice_version",
                    object_id=str(notice.pk),
                    payload={
                        "sha256": notice.sha256,
                        "locale": notice.locale,
                        "purposes": list(notice.purposes),
                        "fields": changed,
                        "retired": notice.retired_at is not None,
                    },
                )
            ],
        )
    return notice
