"""Admin: segment definitions (global) with governance actions, membership history (regional).

Every change goes through ``segments.services.definitions`` (audited, permission-checked):
the add/change form calls ``segment_create``/``segment_update``; status moves only through
the actions, each needing its permission (``approve_segment``, ``activate_segment``,
``review_segment``: privacy officers only).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html_join

from compliance.admin_regional import RegionalModelAdmin
from segments.models import LiftComputation, Segment, SegmentMembership
from segments.selectors.lift import lift_report
from segments.selectors.segments import segment_member_counts, segment_review_due
from segments.services import definitions, reviews
from segments.services.definitions import EDITABLE_FIELDS, SegmentGovernanceError
from segments.templatetags.lift import lift_panel


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "name",
        "status",
        "layer_list",
        "owner",
        "origin",
        "members_per_region",
        "review_due",
    )
    list_filter = ("status", "origin", "motion")
    search_fields = ("key", "name")
    readonly_fields = (
        "status",
        "origin",
        "proposed_by",
        "proposed_by_client",
        "approved_by",
        "approved_at",
        "last_reviewed_at",
        "created_at",
        "updated_at",
    )
    actions = ["approve", "activate", "pause", "mark_reviewed"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["key", "lift"]
        if obj is not None and obj.holdout_salt:  # activated: the arms stand (share_fixed)
            fields.append("control_group_share")
        return fields

    def get_exclude(self, request, obj=None):
        return ()

    # --- list columns ----------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        self._counts = None
        return super().changelist_view(request, extra_context=extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    @admin.display(description="layers")
    def layer_list(self, obj) -> str:
        return ", ".join(obj.layers)

    @admin.display(description="members per region")
    def members_per_region(self, obj) -> str:
        if getattr(self, "_counts", None) is None:
            keys = list(Segment.objects.values_list("key", flat=True))
            self._counts = segment_member_counts(keys=keys)
        counts = self._counts.get(obj.key) or {}
        if not counts:
            return "0"
        return format_html_join(", ", "{}: {}", ((r.upper(), n) for r, n in sorted(counts.items())))

    @admin.display(description="lift")
    def lift(self, obj) -> str:
        if obj is None or not LiftComputation.objects.filter(segment_key=obj.key).exists():
            return "- (not computed: python manage.py lift_compute --segment KEY)"
        return lift_panel(lift_report(segment=obj)) or "-"

    @admin.display(description="review due", boolean=True)
    def review_due(self, obj) -> bool:
        return segment_review_due(segment=obj)

    # --- saving goes through the service -----------------------------------------------
    def save_model(self, request, obj, form, change):
        try:
            if not change:
                values = {f: form.cleaned_data.get(f) for f in EDITABLE_FIELDS}
                values = {k: v for k, v in values.items() if v is not None}
                saved = definitions.segment_create(
                    key=form.cleaned_data["key"], **values, user=request.user
                )
            else:
                changes = {
                    f: form.cleaned_data[f] for f in form.changed_data if f in EDITABLE_FIELDS
                }
                saved = definitions.segment_update(
                    segment=Segment.objects.get(pk=obj.pk), changes=changes, user=request.user
                )
        except SegmentGovernanceError as exc:
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # retire instead: the definition stays as evidence

    # --- governance actions ---------------------------------------------------------------
    def _run(self, request, queryset, service, verb):
        done = 0
        for segment in queryset:
            try:
                service(segment=segment, user=request.user)
                done += 1
            except SegmentGovernanceError as exc:
                self.message_user(request, f"{segment.key}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} segment(s).", messages.SUCCESS)

    @admin.action(description="Approve selected segments", permissions=["approve"])
    def approve(self, request, queryset):
        self._run(request, queryset, definitions.segment_approve, "Approved")

    @admin.action(description="Activate selected segments", permissions=["activate"])
    def activate(self, request, queryset):
        self._run(request, queryset, definitions.segment_activate, "Activated")

    @admin.action(description="Pause selected segments", permissions=["activate"])
    def pause(self, request, queryset):
        self._run(request, queryset, definitions.segment_pause, "Paused")

    @admin.action(description="Mark selected segments reviewed", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        self._run(request, queryset, reviews.segment_review, "Reviewed")

    def has_approve_permission(self, request):
        return request.user.has_perm("segments.approve_segment")

    def has_activate_permission(self, request):
        return request.user.has_perm("segments.activate_segment")

    def has_review_permission(self, request):
        return request.user.has_perm("segments.review_segment")


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(RegionalModelAdmin):
    """Membership history, one region at a time; search by subject id (read-only)."""

    list_display = (
        "subject_id",
        "segment_key",
        "arm",
        "entered_at",
        "entered_reason",
        "exited_at",
        "exited_reason",
    )
    list_filter = ("arm", "exited_reason", "entered_reason")
    search_fields = ("=subject_id", "=segment_key")
    ordering = ("subject_id", "entered_at")
