"""Shared by the officer pages: the admin's page context and loading a request."""

from __future__ import annotations

from uuid import UUID

from django.contrib import admin
from django.http import Http404

from compliance.dsar.models import PrivacyRequest
from compliance.dsar.selectors.requests import request_get


def page_context(request, title: str, **extra) -> dict:
    """The admin's context (site header, navigation) with the page's title and values."""
    return {**admin.site.each_context(request), "title": title, **extra}


def request_or_404(request_id: UUID) -> PrivacyRequest:
    """The request (any client's, any region), or a 404."""
    found = request_get(request_id=request_id)
    if found is None:
        raise Http404("no such request")
    return found


def request_or_404_from_text(value: str) -> PrivacyRequest:
    """The request whose id is ``value`` (a query parameter), or a 404 (not a UUID included)."""
    try:
        return request_or_404(UUID(value))
    except ValueError:
        raise Http404("no such request")
