"""Consent, signal and event-ingest API routes under /api/v1/."""

urlpatterns: list = []
