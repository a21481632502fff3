"""Admin: retention rules (privacy officers edit them; every change audited), dry run, run."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from compliance.audit.services.append import Actor
from compliance.regions import regions
from compliance.retention.models import RetentionRule
from compliance.retention.services.enforce import rule_enforce
from compliance.retention.services.rules import (
    RetentionRuleError,
    rule_delete,
    rule_save,
    rule_validate,
)


class RetentionRuleForm(forms.ModelForm):
    region = forms.ChoiceField(choices=[])

    class Meta:
        model = RetentionRule
        fields = ["category", "region", "max_age_days", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r, r.upper()) for r in regions()]

    def clean(self):
        cleaned = super().clean()
        probe = RetentionRule(
            category=cleaned.get("category") or "",
            region=cleaned.get("region") or "",
            max_age_days=cleaned.get("max_age_days") or 0,
        )
        try:
            rule_validate(rule=probe)
        except RetentionRuleError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return cleaned


def _describe(outcome) -> str:
    if outcome.refused:
        return f"{outcome.category} in {outcome.region}: refused - {outcome.refused}"
    parts = ", ".join(f"{label} {n}" for label, n in outcome.removed.items()) or "nothing"
    verb = "would remove" if outcome.dry_run else "removed"
    return (
        f"{outcome.category} in {outcome.region} (older than {outcome.cutoff:%Y-%m-%d %H:%M}): "
        f"{verb} {parts}"
    )


@admin.register(RetentionRule)
class RetentionRuleAdmin(admin.ModelAdmin):
    form = RetentionRuleForm
    list_display = [
        "category",
        "region",
        "max_age_days",
        "is_active",
        "last_run_at",
        "last_removed",
        "total_removed",
    ]
    list_filter = ["region", "category", "is_active"]
    readonly_fields = ["last_run_at", "last_removed", "total_removed", "last_result"]
    actions = ["dry_run", "run_now"]

    def save_model(self, request, obj, form, change):
        rule_save(rule=obj, actor=Actor.user(request.user), changed=form.changed_data)

    def delete_model(self, request, obj):
        rule_delete(rule=obj, actor=Actor.user(request.user))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Dry run: show what would be removed")
    def dry_run(self, request, queryset):
        for rule in queryset:
            outcome = rule_enforce(rule=rule, actor=Actor.user(request.user), dry_run=True)
            messages.info(request, _describe(outcome))

    @admin.action(description="Run now (removes rows, audited)")
    def run_now(self, request, queryset):
        if not self.has_change_permission(request):
            messages.error(request, "You may not run retention rules.")
            return
        for rule in queryset:
            outcome = rule_enforce(rule=rule, actor=Actor.user(request.user))
            level = messages.WARNING if outcome.refused else messages.SUCCESS
            messages.add_message(request, level, _describe(outcome))
