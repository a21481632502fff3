"""Routes outside the API prefix (e.g. /.well-known/gpc.json)."""

from django.urls import path

from compliance.consent.api.public import gpc_json

urlpatterns = [path(".well-known/gpc.json", gpc_json, name="gpc-json")]
