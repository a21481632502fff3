"""Mounted at ``/admin/`` before ``admin.site.urls``: the front page and ``/admin/officer/``."""

from django.contrib import admin
from django.urls import path

from compliance.officer import views

app_name = "officer"
wrap = admin.site.admin_view

urlpatterns = [
    path("", wrap(views.home), name="home"),
    path("officer/queue/", wrap(views.queue), name="queue"),
    path("officer/requests/new/", wrap(views.request_new), name="request_new"),
    path("officer/requests/<uuid:request_id>/", wrap(views.request_detail), name="request"),
    path(
        "officer/requests/<uuid:request_id>/approve/confirm/",
        wrap(views.request_confirm),
        name="request_confirm",
    ),
    path(
        "officer/requests/<uuid:request_id>/package/",
        wrap(views.request_package),
        name="request_package",
    ),
    path(
        "officer/requests/<uuid:request_id>/certificate/",
        wrap(views.request_certificate),
        name="request_certificate",
    ),
    path(
        "officer/requests/<uuid:request_id>/notes/", wrap(views.request_note), name="request_note"
    ),
    path(
        "officer/requests/<uuid:request_id>/assign/",
        wrap(views.request_assign_view),
        name="request_assign",
    ),
    path(
        "officer/requests/<uuid:request_id>/<str:action>/",
        wrap(views.request_action),
        name="request_action",
    ),
    path("officer/subjects/", wrap(views.subject_lookup), name="subjects"),
    path("officer/segments/", wrap(views.segment_review), name="segments"),
    path("officer/segments/<slug:key>/", wrap(views.segment_detail), name="segment"),
    path(
        "officer/segments/<slug:key>/<str:action>/",
        wrap(views.segment_action),
        name="segment_action",
    ),
    path("officer/dashboard/", wrap(views.dashboard), name="dashboard"),
]
