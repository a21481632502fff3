from django.contrib import admin
from django.urls import include, path, re_path

from compliance import views
from compliance.api.views import RedocView, SchemaView, SwaggerView
from compliance.ops import views as ops_views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("health/", views.health, name="health"),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("admin/", include("compliance.officer.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("compliance.api.urls")),
    path("api/v1/", include("compliance.consent.urls")),
    path("api/v1/", include("compliance.events.urls")),
    path("api/v1/", include("compliance.plans.urls")),
    path("api/v1/", include("compliance.dsar.urls")),
    path("api/v1/", include("segments.urls")),
    path("api/v1/", include("compliance.feed.urls")),
    re_path(r"^api/", include("compliance.api.fallback_urls")),
    path("", include("compliance.consent.public_urls")),
]

handler400 = "compliance.api.errors.bad_request"
handler404 = "compliance.api.errors.page_not_found"
handler500 = "compliance.api.errors.server_error"
