from django.apps import AppConfig


class OfficerConfig(AppConfig):
    name = "compliance.officer"
    label = "officer"
    verbose_name = "Privacy officer's desk"
