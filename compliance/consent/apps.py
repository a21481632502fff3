from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "compliance.consent"
    label = "consent"
    verbose_name = "Consent"

    def ready(self) -> None:
        # models load only once the app registry is ready
        from compliance.consent.models import ConsentEvent, ConsentState
        from compliance.personal_data import personal_data_register

        personal_data_register(
            model=ConsentState,
            subject_field="subject_id",
            order=310,
            exportable=True,
            description="current consent state per purpose and scope (projection of events)",
        )
        personal_data_register(
            model=ConsentEvent,
            subject_field="subject_id",
            order=320,
            description="consent ledger: every decision and raw signal, append-only",
        )
