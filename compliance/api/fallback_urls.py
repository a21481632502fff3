"""Mounted after every API route: any other path under /api/ answers 404 in the envelope."""

from django.urls import re_path

from compliance.api.views import ApiNotFoundView

urlpatterns = [re_path(r"^.*$", ApiNotFoundView.as_view(), name="api-not-found")]
