from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "compliance.consent"
    label = "consent"
    verbose_name = "Consent"

    def ready(self) -> None:
        # models load only once the app registry is ready
        from django.core.signals import request_finished, request_started
        from django.db.models.signals import post_delete, post_save

        from compliance.consent.models import ConsentEvent, ConsentState, EventSource, Purpose
        from compliance.consent.selectors import cached
        from compliance.personal_data import personal_data_register
        from compliance.plans.models import TrackingPlan

        request_started.connect(cached.request_started, dispatch_uid="consent-config-request")
        request_finished.connect(cached.request_finished, dispatch_uid="consent-config-done")
        for model in (Purpose, EventSource, TrackingPlan):
            for signal in (post_save, post_delete):
                signal.connect(
                    cached.configuration_invalidate,
                    sender=model,
                    dispatch_uid=f"consent-config-{model.__name__}-{signal is post_save}",
                )

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
