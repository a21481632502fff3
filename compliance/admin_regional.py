"""Admin for regional models: every page works on one region's database, chosen by a filter.

The region comes from the ``region`` list filter (``?region=eu``); change pages opened from the
list keep it through Django's preserved filters. Regional rows are read-only in the admin by
default: changes go through services (which audit them), exposed as admin actions.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from django.contrib import admin

from compliance.admin_base import ReadOnlyAdminMixin
from compliance.regions import regions

REGION_PARAM = "region"


def request_region(request) -> str:
    """The region a request is about: ``?region=``, else the preserved filter, else the first."""
    known = regions()
    region = request.GET.get(REGION_PARAM)
    if region is None:
        preserved = parse_qs(request.GET.get("_changelist_filters", ""))
        region = (preserved.get(REGION_PARAM) or [None])[0]
    return region if region in known else known[0]


class RegionListFilter(admin.SimpleListFilter):
    title = "region"
    parameter_name = REGION_PARAM

    def lookups(self, request, model_admin):
        return [(region, region.upper()) for region in regions()]

    def choices(self, changelist):
        current = request_region(changelist.model_admin._request)
        for value, label in self.lookup_choices:
            yield {
                "selected": value == current,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        return queryset  # the database is chosen in RegionalModelAdmin.get_queryset


class RegionalModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only by default; ``get_queryset`` uses the request's region database."""

    def get_list_filter(self, request):
        return [RegionListFilter, *super().get_list_filter(request)]

    def get_queryset(self, request):
        self._request = request
        return super().get_queryset(request).using(request_region(request))

    def changelist_view(self, request, extra_context=None):
        self._request = request
        extra_context = {**(extra_context or {}), "current_region": request_region(request)}
        return super().changelist_view(request, extra_context=extra_context)
