"""Admin for the global consent configuration (privacy officers edit; changes are audited)."""

from __future__ import annotations

from django.contrib import admin, messages

from compliance.audit.services.append import Actor
from compliance.consent.models import EventSource, NoticeVersion, Purpose
from compliance.consent.services.config import (
    NoticeLockedError,
    notice_save,
    purpose_save,
    source_save,
)


class _NoDelete:
    """Configuration rows are referenced by key from the ledger: deactivate, don't delete."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Purpose)
class PurposeAdmin(_NoDelete, admin.ModelAdmin):
    list_display = ("key", "version", "name", "default_expiry_days", "gpc_effect", "is_active")
    list_filter = ("is_active", "gpc_effect")
    search_fields = ("key", "name")
    readonly_fields = ("version", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "key") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        purpose_save(purpose=obj, actor=Actor.user(request.user), changed=form.changed_data)


@admin.register(EventSource)
class EventSourceAdmin(_NoDelete, admin.ModelAdmin):
    list_display = ("key", "name", "channel", "consent_scope", "is_active")
    list_filter = ("channel", "consent_scope", "is_active")
    search_fields = ("key", "name")

    def get_readonly_fields(self, request, obj=None):
        return ("key",) if obj else ()

    def save_model(self, request, obj, form, change):
        source_save(source=obj, actor=Actor.user(request.user), changed=form.changed_data)


@admin.register(NoticeVersion)
class NoticeVersionAdmin(_NoDelete, admin.ModelAdmin):
    list_display = ("id", "locale", "purposes", "sha256", "published_at", "retired_at")
    list_filter = ("locale",)
    readonly_fields = ("sha256", "created_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.published_at is not None:
            return (*self.readonly_fields, "text", "purposes", "locale", "published_at")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        try:
            notice_save(notice=obj, actor=Actor.user(request.user), changed=form.changed_data)
        except NoticeLockedError as exc:
            messages.error(request, str(exc))
