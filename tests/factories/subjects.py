"""Subjects, made the way the toolkit makes them (``subject_resolve``), or as plain rows."""

from __future__ import annotations

import factory

from compliance.consent.services.record import consent_record
from compliance.consent.services.stitching import subjects_merge
from compliance.identifiers import identifier_normalize
from compliance.models import Subject
from compliance.regions import region_alias
from compliance.services.subjects import identifier_blind_index, identity_attach, subject_resolve
from segments.models import LAYER_PURPOSES
from tests.factories.base import ACTOR, RegionalRowFactory, ServiceFactory


class SubjectFactory(ServiceFactory):
    """``subject_resolve(identifier_type, value, jurisdiction)`` (``value`` is ``email``, a
    fresh address unless given), then: ``identifiers`` (``{type: value}``) attached with
    ``identity_attach``; a web grant per purpose of ``consents`` (``consented=True``: the
    behavioral layer's), recorded in ``jurisdiction``; with ``merged_into`` (a subject of the
    same region), merged into it by ``subjects_merge`` and returned as the merged one.
    An identifier already held resolves to its subject, as in production."""

    class Meta:
        model = Subject

    class Params:
        email = factory.Sequence(lambda n: f"person{n}@example.org")
        consented = factory.Trait(consents=LAYER_PURPOSES["behavioral"])

    jurisdiction = "FR"
    identifier_type = "email"
    value = factory.SelfAttribute("email")
    identifiers = factory.Dict({})
    consents = ()
    merged_into = None
    actor = ACTOR

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        jurisdiction,
        identifier_type,
        value,
        identifiers,
        consents,
        merged_into,
        actor,
    ):
        subject = subject_resolve(
            identifier_type=identifier_type, value=value, jurisdiction=jurisdiction, actor=actor
        )
        for kind, other in identifiers.items():
            identifier = identifier_normalize(identifier_type=kind, value=other)
            identity_attach(
                subject=subject,
                identifier=identifier,
                blind_index=identifier_blind_index(identifier=identifier),
                actor=actor,
            )
        for purpose in consents:
            consent_record(
                subject=subject,
                purpose=purpose,
                decision="granted",
                source="web",
                actor=actor,
                jurisdiction=jurisdiction,
            )
        if merged_into is not None:
            subjects_merge(survivor=merged_into, merged=subject, actor=actor)
            subject = Subject.objects.using(region_alias(region=subject.region)).get(pk=subject.pk)
        return subject


class SubjectRowFactory(RegionalRowFactory):
    """A bare ``Subject`` row in ``region`` (no key, identity or audit entry): for seeding
    many subjects where only their ids matter."""

    class Meta:
        model = Subject
