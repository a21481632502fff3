"""API routes of the events app under /api/v1/."""

from django.urls import path

from compliance.events.views import EventBatchView

urlpatterns = [
    path("events/", EventBatchView.as_view(), name="events-ingest"),
]
