from django.apps import AppConfig

from compliance.hooks import register_enter_blocker
from compliance.personal_data import personal_data_exempt, personal_data_register


class DsarConfig(AppConfig):
    name = "compliance.dsar"
    label = "dsar"
    verbose_name = "Data subject requests"

    def ready(self) -> None:
        # cycle: models and services need the app registry, which is ready only now
        from compliance.dsar.models import (
            CallbackAttempt,
            DestroyedKey,
            ErasureStep,
            LegalHold,
            Package,
            PrivacyRequest,
            Restriction,
        )

        # cycle: the service imports models, loadable only once the registry is ready
        from compliance.dsar.services.restriction import restriction_enter_blocker

        personal_data_register(
            model=Package,
            subject_field="subject_id",
            order=50,
            exportable=False,
            description="encrypted access/portability packages",
        )
        personal_data_register(
            model=LegalHold,
            subject_field="subject_id",
            order=60,
            description="legal holds on the subject (only released ones can be erased)",
        )
        personal_data_register(
            model=Restriction,
            subject_field="subject_id",
            order=70,
            description="restrictions of processing",
        )
        personal_data_register(
            model=PrivacyRequest,
            subject_field="subject_id",
            order=800,
            description="the subject's requests (erasure keeps the request, without the subject)",
        )
        personal_data_exempt(
            model=DestroyedKey,
            why="ledger of destroyed keys: random subject ids only, replayed after a restore",
        )
        personal_data_exempt(
            model=ErasureStep, why="progress of erasure jobs: step names and row counts"
        )
        personal_data_exempt(
            model=CallbackAttempt,
            why="status callback deliveries: request id, status code and time; no subject",
        )
        register_enter_blocker(restriction_enter_blocker)
