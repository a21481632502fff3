from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from compliance import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("health/", views.health, name="health"),
    path("admin/", include("compliance.officer.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("compliance.api.urls")),
    path("api/v1/", include("compliance.consent.urls")),
    path("api/v1/", include("compliance.events.urls")),
    path("api/v1/", include("compliance.dsar.urls")),
    path("api/v1/", include("segments.urls")),
    path("api/v1/", include("compliance.feed.urls")),
    path("", include("compliance.consent.public_urls")),
]
