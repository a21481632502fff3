"""Consent decisions, recorded through ``consent_record`` (events, state and audit)."""

from __future__ import annotations

import factory

from compliance.consent.models import ConsentEvent
from compliance.consent.services.record import consent_record
from tests.factories.base import ACTOR, ServiceFactory
from tests.factories.subjects import SubjectFactory


class ConsentFactory(ServiceFactory):
    """``consent_record(subject, purpose, decision, source, jurisdiction, ...)``; returns the
    event. Any other keyword of ``consent_record`` (``captured_at``, ``lawful_basis``,
    ``method``, ``raw_signal``, ...) is passed through."""

    class Meta:
        model = ConsentEvent

    subject = factory.SubFactory(SubjectFactory)
    purpose = "measurement"
    decision = "granted"
    source = "web"
    jurisdiction = "FR"
    actor = ACTOR

    @classmethod
    def _create(cls, model_class, **kwargs):
        return consent_record(**kwargs)
