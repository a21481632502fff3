from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "compliance.events"
    label = "events"
    verbose_name = "Events"
