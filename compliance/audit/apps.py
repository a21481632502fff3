from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "compliance.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from compliance.audit import checks  # noqa: F401  (registers the trigger check)
