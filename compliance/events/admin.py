"""Admin: rejection counters per region (counts only). Events themselves are not listed: they
are a person's behavioral data, reached through the subject's access package instead."""

from django.contrib import admin

from compliance.admin_regional import RegionalModelAdmin
from compliance.events.models import RejectionCount


@admin.register(RejectionCount)
class RejectionCountAdmin(RegionalModelAdmin):
    list_display = ("day", "source", "reason", "count", "updated_at")
    list_filter = ("source", "reason")
    date_hierarchy = "day"
    ordering = ("-day", "source", "reason")
