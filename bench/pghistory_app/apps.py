from django.apps import AppConfig


class PghistoryBenchConfig(AppConfig):
    name = "bench.pghistory_app"
    label = "pghistory_bench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance.personal_data import personal_data_exempt

        from .models import TrackedMembership

        for model in (TrackedMembership, TrackedMembership.pgh_event_model):
            personal_data_exempt(model=model, why="bench-only scratch table (benchmarks)")
