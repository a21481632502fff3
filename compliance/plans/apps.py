from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "compliance.plans"
    label = "plans"
    verbose_name = "Tracking plans"

    def ready(self) -> None:
        from compliance.personal_data import personal_data_exempt
        from compliance.plans import checks  # noqa: F401 - registers the system check
        from compliance.plans.models import InstrumentationCount

        personal_data_exempt(
            model=InstrumentationCount,
            why="counts per day, source, event name, violation type and JSON path; no value, "
            "subject or identifier",
        )
