from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        # cycle: these modules import models, which exist only once the app registry is ready
        from compliance.hooks import on_consent_basis_lost, on_subject_merged
        from compliance.personal_data import personal_data_register
        from segments import checks  # noqa: F401  (registers the system checks)
        from segments.models import SegmentMembership
        from segments.services import exits, memberships

        personal_data_register(
            model=SegmentMembership,
            subject_field="subject_id",
            order=200,
            description="segment memberships and their history (entries, exits, reasons)",
        )
        on_consent_basis_lost(memberships.on_consent_basis_lost)
        on_subject_merged(exits.on_subject_merged)
