"""Admin for the core models: API clients (global), subjects and directory (read-only)."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin, messages

from compliance.admin_base import ReadOnlyAdminMixin
from compliance.admin_regional import RegionalModelAdmin
from compliance.api.auth import token_generate, token_hash
from compliance.api.scopes import SCOPES
from compliance.models import ApiClient, Subject, SubjectDirectory, WorkerHeartbeat
from compliance.services.api_clients import api_client_save, officer_scopes_refusal


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ("name", "scopes", "user", "is_active")

    def clean_scopes(self):
        scopes = self.cleaned_data["scopes"]
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise forms.ValidationError('Enter a JSON list of scope names, e.g. ["dsar:read"].')
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise forms.ValidationError(f"Unknown scopes: {', '.join(unknown)}.")
        return scopes

    def clean(self):
        cleaned = super().clean()
        if "scopes" in cleaned:
            refusal = officer_scopes_refusal(scopes=cleaned["scopes"], user=cleaned.get("user"))
            if refusal:
                self.add_error("scopes", f"{refusal}.")
        return cleaned


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ("name", "token_prefix", "scope_list", "user", "is_active", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("token_prefix", "created_at", "last_used_at")
    fields = ("name", "scopes", "user", "is_active", "token_prefix", "created_at", "last_used_at")

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "scopes" in form.base_fields:  # absent when read-only (auditors, support agents)
            form.base_fields["scopes"].help_text = "A JSON list of scopes; known: " + ", ".join(
                SCOPES
            )
        return form

    def save_model(self, request, obj, form, change):
        token = None
        if not change:
            token = token_generate()
            obj.token_prefix, obj.token_hash = token[:12], token_hash(token)
            obj.callback_secret = secrets.token_hex(32)
        api_client_save(client=obj, actor_user=request.user, created=not change)
        if token:
            messages.warning(
                request,
                f"Token for {obj.name} (shown once, store it now): {token} - callback signing "
                f"secret (shown once): {obj.callback_secret}",
            )


admin.site.site_header = "Privacy & consent compliance"
admin.site.site_title = "Compliance admin"


@admin.register(SubjectDirectory)
class SubjectDirectoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("identifier_type", "region", "subject_id", "created_at")
    list_filter = ("region", "identifier_type")
    search_fields = ("subject_id",)


@admin.register(Subject)
class SubjectAdmin(RegionalModelAdmin):
    list_display = ("id", "region", "created_at", "merged_into")
    search_fields = ("id",)
    readonly_fields = ("id", "region", "created_at", "merged_into")
    exclude = ("audit_token",)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(RegionalModelAdmin):
    list_display = ("hostname", "region", "seen_at")
