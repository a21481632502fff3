"""Admin: webhook subscriptions (global; secret shown once), outbox and receipts per region."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html_join

from compliance.admin_regional import RegionalModelAdmin
from compliance.audit.services.append import Actor
from compliance.feed.models import (
    Change,
    ChangeKind,
    DeliveryReceipt,
    DeliveryState,
    Subscription,
    SubscriptionArm,
)
from compliance.feed.services.subscriptions import (
    SubscriptionInputError,
    subscription_delete,
    subscription_save,
    subscription_secret_rotate,
    subscription_validate,
)
from compliance.regions import regions


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=ChangeKind.choices, widget=forms.CheckboxSelectMultiple
    )
    regions = forms.MultipleChoiceField(
        choices=[],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: every region",
    )
    segments = forms.CharField(
        required=False, help_text="segment keys, comma-separated; empty: every segment"
    )
    arm = forms.ChoiceField(
        choices=SubscriptionArm.choices,
        required=False,
        initial=SubscriptionArm.TREATMENT,
        help_text="control members are never activated: only a measurement tool opts in to "
        "the control arm's enters and exits (consent changes go to every choice)",
    )

    class Meta:
        model = Subscription
        fields = [
            "name",
            "url",
            "purpose",
            "event_types",
            "segments",
            "regions",
            "arm",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["regions"].choices = [(r, r.upper()) for r in regions()]
        if self.instance.pk:
            self.initial["segments"] = ", ".join(self.instance.segments or [])

    def clean_arm(self):
        return self.cleaned_data.get("arm") or SubscriptionArm.TREATMENT

    def clean_segments(self):
        raw = self.cleaned_data.get("segments") or ""
        return [key.strip() for key in raw.split(",") if key.strip()]

    def clean(self):
        cleaned = super().clean()
        probe = Subscription(
            url=cleaned.get("url") or "",
            event_types=list(cleaned.get("event_types") or []),
            segments=cleaned.get("segments") or [],
            regions=list(cleaned.get("regions") or []),
            arm=cleaned.get("arm") or "",
        )
        try:
            subscription_validate(subscription=probe)
        except SubscriptionInputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = [
        "name",
        "url",
        "purpose",
        "types",
        "arm",
        "is_active",
        "secret_hint",
        "updated_at",
    ]
    list_filter = ["arm", "is_active"]
    readonly_fields = ["secret_shown", "delivery_status", "created_at", "updated_at"]
    actions = ["rotate_secret"]

    @admin.display(description="event types")
    def types(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description="secret")
    def secret_shown(self, obj):
        if not obj.pk:
            return "generated when saved, shown once"
        return f"{obj.secret_hint}… (shown once when created or rotated)"

    @admin.display(description="delivery per region")
    def delivery_status(self, obj):
        if not obj.pk:
            return "-"
        rows = []
        for region in regions():
            state = DeliveryState.objects.using(region).filter(subscription_id=obj.pk).first()
            last = DeliveryReceipt.objects.using(region).filter(subscription_id=obj.pk).first()
            rows.append(
                (
                    region.upper(),
                    state.delivered if state else 0,
                    state.last_delivered_at if state and state.last_delivered_at else "never",
                    state.attempts if state else 0,
                    last.status_code or last.error if last else "-",
                )
            )
        return format_html_join(
            "",
            "<div>{}: {} delivered, last {}, failed attempts {}, last response {}</div>",
            rows,
        )

    def save_model(self, request, obj, form, change):
        secret = subscription_save(
            subscription=obj, actor=Actor.user(request.user), changed=form.changed_data
        )
        if secret:
            messages.warning(
                request, f"Secret of {obj.name} (copy it now, it is not shown again): {secret}"
            )

    def delete_model(self, request, obj):
        subscription_delete(subscription=obj, actor=Actor.user(request.user))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Rotate the secret (the new one is shown once)")
    def rotate_secret(self, request, queryset):
        if not self.has_change_permission(request):
            return
        for obj in queryset:
            secret = subscription_secret_rotate(subscription=obj, actor=Actor.user(request.user))
            messages.warning(request, f"New secret of {obj.name} (shown once): {secret}")


@admin.register(Change)
class ChangeAdmin(RegionalModelAdmin):
    list_display = [
        "id",
        "kind",
        "segment_key",
        "arm",
        "purpose",
        "decision",
        "reason",
        "occurred_at",
    ]
    list_filter = ["kind", "arm"]
    search_fields = ["=change_id", "=segment_key"]


@admin.register(DeliveryReceipt)
class DeliveryReceiptAdmin(RegionalModelAdmin):
    list_display = [
        "sent_at",
        "subscription_id",
        "count",
        "attempt",
        "status_code",
        "error",
        "duration_ms",
    ]
    list_filter = ["status_code"]
