"""API routes of the plans app under /api/v1/."""

from django.urls import path

from compliance.plans.api.views import InstrumentationView, TrackingPlanView

urlpatterns = [
    path("sources/instrumentation/", InstrumentationView.as_view(), name="sources-instrumentation"),
    path("sources/<slug:key>/tracking-plan/", TrackingPlanView.as_view(), name="tracking-plan"),
]
