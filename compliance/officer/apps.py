from django.apps import AppConfig


class OfficerConfig(AppConfig):
    name = "compliance.officer"
    label = "officer"
    verbose_name = "Privacy officer's desk"

    def ready(self) -> None:
        # models load only once the app registry is ready (apps.py is imported before it)
        from compliance.officer.models import RequestAssignment, RequestNote
        from compliance.personal_data import personal_data_exempt, personal_data_register

        personal_data_register(
            model=RequestNote,
            subject_field="subject_id",
            order=790,
            exportable=False,
            description="staff notes on the person's requests (internal, never exported)",
        )
        personal_data_exempt(
            model=RequestAssignment, why="which staff user works a request; no data of the person"
        )
