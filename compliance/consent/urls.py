"""Consent API routes, mounted under /api/v1/."""

from django.urls import path

from compliance.consent.api import views

urlpatterns = [
    path("consents/", views.ConsentCreateView.as_view(), name="consent-create"),
    path("subjects/lookup", views.SubjectLookupView.as_view(), name="subject-lookup"),
    path(
        "subjects/<uuid:subject_id>/consents/",
        views.SubjectConsentsView.as_view(),
        name="subject-consents",
    ),
    path(
        "subjects/<uuid:subject_id>/consent-mode/",
        views.ConsentModeView.as_view(),
        name="subject-consent-mode",
    ),
    path("signals/tcf/decode", views.TcfDecodeView.as_view(), name="tcf-decode"),
]
