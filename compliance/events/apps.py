from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "compliance.events"
    label = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        # models load only once the app registry is ready
        from compliance.events.models import Event, RejectionCount
        from compliance.personal_data import personal_data_exempt, personal_data_register

        personal_data_register(
            model=Event,
            subject_field="subject_id",
            order=300,
            description="behavioral events (properties encrypted with the subject's key)",
        )
        personal_data_exempt(
            model=RejectionCount,
            why="counts of rejected events per day, source and reason; no subject or identifier",
        )
