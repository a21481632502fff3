from django.apps import AppConfig


class DsarConfig(AppConfig):
    name = "compliance.dsar"
    label = "dsar"
    verbose_name = "Data subject requests"
