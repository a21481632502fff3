from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # models, checks and signal receivers load only once the app registry is ready
        from compliance import checks, roles  # noqa: F401  (registers checks and role sync)
        from compliance.api import schema  # noqa: F401  (OpenAPI auth extension)
        from compliance.models import Identity, Subject, SubjectKey, Suppression, WorkerHeartbeat
        from compliance.personal_data import personal_data_exempt, personal_data_register

        personal_data_register(
            model=Identity,
            subject_field="subject_id",
            order=900,
            description="identifiers (encrypted) and their blind indexes",
        )
        personal_data_register(
            model=SubjectKey,
            subject_field="subject_id",
            order=950,
            exportable=False,
            description="the subject's wrapped data key (destroyed on erasure)",
        )
        personal_data_register(
            model=Subject,
            subject_field="id",
            order=1000,
            description="the subject row",
        )
        personal_data_exempt(
            model=Suppression,
            why="blind indexes of erased identifiers, kept to refuse re-ingestion",
        )
        personal_data_exempt(model=WorkerHeartbeat, why="worker host names, no subject data")
