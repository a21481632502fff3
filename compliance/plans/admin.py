"""Admin: tracking plans (every save publishes a new version through the audited service) and
the regions' instrumentation counters (counts only, read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from compliance.admin_regional import RegionalModelAdmin
from compliance.audit.services.append import Actor
from compliance.plans.documents import PlanInvalid, plan_document_parse
from compliance.plans.models import InstrumentationCount, TrackingPlan
from compliance.plans.services.plans import tracking_plan_publish


class TrackingPlanForm(forms.ModelForm):
    """The plan as JSON; validated like the API's ``PUT`` (errors name the field path)."""

    events = forms.JSONField(
        help_text='[{"name", "description", "owner", "schema": {JSON Schema 2020-12}}]'
    )
    identifier_types = forms.JSONField(required=False, help_text='e.g. ["email", "user_id"]')

    class Meta:
        model = TrackingPlan
        fields = ("source", "mode", "events", "identifier_types")

    def clean(self):
        data = super().clean()
        try:
            self.document = plan_document_parse(
                data={
                    "mode": data.get("mode"),
                    "events": data.get("events"),
                    "identifier_types": data.get("identifier_types") or [],
                }
            )
        except PlanInvalid as exc:
            raise forms.ValidationError(
                [f"{path}: {'; '.join(messages)}" for path, messages in exc.fields.items()]
            ) from None
        return data


@admin.register(TrackingPlan)
class TrackingPlanAdmin(admin.ModelAdmin):
    """Saving (a new plan, or an old version edited) always adds the source's next version;
    versions are never changed or deleted."""

    form = TrackingPlanForm
    list_display = ("source", "version", "mode", "event_count", "short_sha", "created_at")
    list_filter = ("source", "mode")
    readonly_fields = ("version", "sha256", "created_at", "created_by")

    @admin.display(description="events")
    def event_count(self, obj):
        return len(obj.events)

    @admin.display(description="SHA-256")
    def short_sha(self, obj):
        return obj.sha256[:12]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        plan = tracking_plan_publish(
            source=form.cleaned_data["source"],
            document=form.document,
            actor=Actor.user(request.user),
        )
        obj.pk, obj.version, obj.sha256 = plan.pk, plan.version, plan.sha256

    def get_changeform_initial_data(self, request):
        return {
            "events": [],
            "identifier_types": [],
            **super().get_changeform_initial_data(request),
        }


@admin.register(InstrumentationCount)
class InstrumentationCountAdmin(RegionalModelAdmin):
    list_display = ("day", "source", "event", "kind", "path", "count", "last_seen_at")
    list_filter = ("source", "kind")
    date_hierarchy = "day"
