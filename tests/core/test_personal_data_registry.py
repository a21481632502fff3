"""Every regional model is either in the personal-data registry or exempt with a reason."""

from __future__ import annotations

from django.apps import apps

from compliance.personal_data import personal_data_exemptions, personal_data_models
from compliance.residency import REGIONAL, residency_of


def test_every_regional_model_is_registered_or_exempt():
    registered = {entry.label for entry in personal_data_models()}
    exempt = set(personal_data_exemptions())
    regional = {m._meta.label for m in apps.get_models() if residency_of(m) is REGIONAL}
    assert regional - registered - exempt == set()
    assert registered | exempt <= regional  # only regional models hold a person's data


def test_registry_order_ends_with_the_subject():
    entries = personal_data_models()
    assert entries[-1].label == "compliance.Subject"
    for entry in entries:
        field = entry.model._meta.get_field(entry.subject_field)
        assert field.concrete, entry.label
