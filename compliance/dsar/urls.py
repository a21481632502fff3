"""API routes of the dsar app under /api/v1/."""

from django.urls import path

from compliance.dsar.api import views

urlpatterns = [
    path("requests/", views.RequestListCreateView.as_view(), name="dsar-requests"),
    path("requests/<uuid:request_id>/", views.RequestDetailView.as_view(), name="dsar-request"),
    path(
        "requests/<uuid:request_id>/cancel/", views.RequestCancelView.as_view(), name="dsar-cancel"
    ),
    path(
        "requests/<uuid:request_id>/approve/",
        views.RequestApproveView.as_view(),
        name="dsar-approve",
    ),
    path(
        "requests/<uuid:request_id>/reject/", views.RequestRejectView.as_view(), name="dsar-reject"
    ),
    path(
        "requests/<uuid:request_id>/extend/", views.RequestExtendView.as_view(), name="dsar-extend"
    ),
    path(
        "requests/<uuid:request_id>/preview/",
        views.RequestPreviewView.as_view(),
        name="dsar-preview",
    ),
    path(
        "requests/<uuid:request_id>/package/",
        views.RequestPackageView.as_view(),
        name="dsar-package",
    ),
    path(
        "requests/<uuid:request_id>/callbacks/",
        views.RequestCallbacksView.as_view(),
        name="dsar-callbacks",
    ),
    path(
        "requests/<uuid:request_id>/receipt/",
        views.RequestReceiptView.as_view(),
        name="dsar-receipt",
    ),
]
