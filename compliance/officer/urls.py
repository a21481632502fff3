"""Mounted at ``/admin/`` before ``admin.site.urls``: the front page and ``/admin/officer/``."""

from django.contrib import admin
from django.urls import path

from compliance.officer.views import (
    decisions,
    instrumentation,
    queue,
    requests,
    segments,
    subjects,
)

app_name = "officer"
wrap = admin.site.admin_view

urlpatterns = [
    path("", wrap(queue.home), name="home"),
    path("officer/queue/", wrap(queue.queue), name="queue"),
    path("officer/requests/new/", wrap(requests.request_new), name="request_new"),
    path("officer/requests/<uuid:request_id>/", wrap(requests.request_detail), name="request"),
    path(
        "officer/requests/<uuid:request_id>/approve/confirm/",
        wrap(decisions.request_confirm),
        name="request_confirm",
    ),
    path(
        "officer/requests/<uuid:request_id>/package/",
        wrap(requests.request_package),
        name="request_package",
    ),
    path(
        "officer/requests/<uuid:request_id>/certificate/",
        wrap(requests.request_certificate),
        name="request_certificate",
    ),
    path(
        "officer/requests/<uuid:request_id>/notes/",
        wrap(requests.request_note),
        name="request_note",
    ),
    path(
        "officer/requests/<uuid:request_id>/assign/",
        wrap(requests.request_assign_view),
        name="request_assign",
    ),
    path(
        "officer/requests/<uuid:request_id>/<str:action>/",
        wrap(decisions.request_action),
        name="request_action",
    ),
    path("officer/subjects/", wrap(subjects.subject_lookup), name="subjects"),
    path("officer/segments/", wrap(segments.segment_review), name="segments"),
    path("officer/segments/<slug:key>/", wrap(segments.segment_detail), name="segment"),
    path(
        "officer/segments/<slug:key>/<str:action>/",
        wrap(segments.segment_action),
        name="segment_action",
    ),
    path("officer/dashboard/", wrap(queue.dashboard), name="dashboard"),
    path(
        "officer/instrumentation/",
        wrap(instrumentation.instrumentation),
        name="instrumentation",
    ),
]
