"""Daily expiry: grants past ``expires_at`` get an ``expired`` event (method ``expiry``).

Evaluation already treats a lapsed grant as no consent (fail closed) the moment it lapses;
the job makes the lapse explicit in the ledger and the audit chain (``CONSENT_EXPIRED``) and
lets dependants act: ``consent_basis_lost`` runs with reason ``consent_expired`` when the
purpose has no other basis. Idempotent: an expired state row is no longer ``granted``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from compliance.audit.services.append import Actor
from compliance.consent.models import ConsentEvent, ConsentState, Decision, Method
from compliance.consent.services.record import (
    DecisionInput,
    consent_prepare,
    consent_record_prepared,
)
from compliance.models import Subject
from compliance.regions import region_alias


def consent_expire_due(
    *, region: str, actor: Actor | None = None, now: datetime | None = None, limit: int = 5000
) -> int:
    """Record ``expired`` for up to ``limit`` lapsed grants of ``region``; returns the count.

    Each subject's expiries are written in their own transaction (a failure leaves the others
    recorded; the next run picks the rest up).
    """
    alias = region_alias(region=region)
    actor = actor or Actor.system("consent_expiry")
    now = now or timezone.now()
    due = list(
        ConsentState.objects.using(alias)
        .filter(decision=Decision.GRANTED, expires_at__lte=now)
        .order_by("expires_at")[:limit]
    )
    events = ConsentEvent.objects.using(alias).in_bulk([s.event_id for s in due])
    subjects = Subject.objects.using(alias).in_bulk([s.subject_id for s in due])
    written = 0
    for state in due:
        granted = events.get(state.event_id)
        subject = subjects.get(state.subject_id)
        if granted is None or subject is None:
            continue
        prepared = consent_prepare(
            decisions=[
                DecisionInput(
                    purpose=state.purpose,
                    decision=Decision.EXPIRED,
                    lawful_basis=granted.lawful_basis,
                )
            ],
            source=granted.source,
            method=Method.EXPIRY,
            jurisdiction=granted.jurisdiction,
            captured_at=state.expires_at,
            notice_version_id=None,
            field_prefix="",
        )
        written += len(consent_record_prepared(subject=subject, prepared=prepared, actor=actor))
    return written
