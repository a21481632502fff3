"""Admin for the DSAR queue: requests per region (failures and their reasons visible), holds,
restrictions, the ledger and erasure steps. Changes go through the services (audited)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from compliance.admin_regional import RegionalModelAdmin, request_region
from compliance.audit.services.append import Actor
from compliance.dsar.models import (
    DestroyedKey,
    ErasureStep,
    LegalHold,
    Package,
    PrivacyRequest,
    RequestDirectory,
    Restriction,
)
from compliance.dsar.selectors.requests import callback_attempts
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.export import package_read
from compliance.dsar.services.report import short_reference
from compliance.dsar.services.requests import request_approve
from compliance.dsar.services.restriction import restriction_lift


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(RegionalModelAdmin):
    # compact enough for 1280 px beside the filters: details live on the officer's page
    list_display = ("reference", "type", "regulation", "status", "due", "progress", "failure")
    list_display_links = None
    list_filter = ("status", "type", "regulation", "due_flag")
    readonly_fields = [*(f.name for f in PrivacyRequest._meta.fields), "callbacks"]
    exclude = ("identifier_indexes", "subject_token", "erasure_subjects")
    actions = ["approve_selected", "download_package"]

    @admin.display(description="request page")
    def officer_page(self, obj) -> str:
        """The officer's request page (dry run, receipt, approve/reject/extend by permission)."""
        return format_html('<a href="{}">open</a>', reverse("officer:request", args=[obj.pk]))

    @admin.display(description="status callbacks")
    def callbacks(self, obj) -> str:
        """Every delivery try of the request's status callbacks (oldest first)."""
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                    a.status,
                    a.event_id,
                    a.attempt,
                    a.status_code or a.error,
                )
                for a in callback_attempts(request=obj)
            ),
        )
        if not rows:
            return "none sent"
        return format_html(
            "<table><tr><th>sent</th><th>status</th><th>event id</th><th>attempt</th>"
            "<th>answer</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="progress")
    def progress(self, obj) -> str:
        return f"{obj.progress_done}/{obj.progress_total}"

    @admin.display(description="reference", ordering="id")
    def reference(self, obj) -> str:
        """The short reference, linking to the officer's request page."""
        return format_html(
            '<a href="{}">{}</a>',
            reverse("officer:request", args=[obj.pk]),
            short_reference(obj.pk),
        )

    @admin.display(description="due at", ordering="due_at")
    def due(self, obj) -> str:
        flag = {"overdue": " (overdue)", "due_soon": " (due soon)"}.get(obj.due_flag, "")
        extended = " ext." if obj.extended else ""
        return f"{obj.due_at:%Y-%m-%d}{extended}{flag}"

    @admin.display(description="failure")
    def failure(self, obj) -> str:
        text = obj.failure_reason or ""
        return text if len(text) <= 60 else text[:59] + "…"

    def has_add_permission(self, request) -> bool:
        """Requests are opened through the officer's intake form (``request_open``)."""
        return request.user.has_perm("dsar.add_privacyrequest")

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("officer:request_new"))

    @admin.action(
        description="Approve selected requests (privacy officer)", permissions=["approve"]
    )
    def approve_selected(self, request, queryset):
        for privacy_request in queryset:
            if privacy_request.type == "erasure":
                # irreversible: only through the request page's confirmation step
                self.message_user(
                    request,
                    f"{short_reference(privacy_request.pk)}: erasures are approved on their "
                    f"request page, after typing the reference.",
                    messages.WARNING,
                )
                continue
            try:
                request_approve(request=privacy_request, actor=Actor.user(request.user))
            except RequestError as exc:
                self.message_user(request, f"{privacy_request.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{privacy_request.pk}: approved")

    def has_handle_permission(self, request) -> bool:
        return request.user.has_perm("dsar.change_privacyrequest")

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("dsar.approve_privacyrequest")

    # the package holds the person's data: those who handle requests (officers, support agents
    # hold change_privacyrequest), not auditors, who only read the queue and the audit trail
    @admin.action(description="Download the package (one request)", permissions=["handle"])
    def download_package(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "select exactly one request", messages.ERROR)
            return None
        privacy_request = queryset.get()
        try:
            data, _ = package_read(request=privacy_request, actor=Actor.user(request.user))
        except RequestError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="request-{privacy_request.pk}.zip"'
        return response


@admin.register(LegalHold)
class LegalHoldAdmin(RegionalModelAdmin):
    list_display = ("subject_id", "active", "reason", "created_at", "released_at")


@admin.register(Restriction)
class RestrictionAdmin(RegionalModelAdmin):
    list_display = ("subject_id", "active", "request_id", "created_at", "lifted_at")
    list_filter = ("active",)
    actions = ["lift"]

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("dsar.change_restriction")

    @admin.action(
        description="Lift the restriction (the person may enter segments again)",
        permissions=["lift"],
    )
    def lift(self, request, queryset):
        lifted = sum(
            restriction_lift(
                region=request_region(request),
                subject_id=subject_id,
                actor=Actor.user(request.user),
            )
            for subject_id in {r.subject_id for r in queryset if r.active}
        )
        messages.success(request, f"Lifted {lifted} restriction(s); each is in the audit log.")


@admin.register(DestroyedKey)
class DestroyedKeyAdmin(RegionalModelAdmin):
    list_display = ("subject_id", "destroyed_at", "request_id")


@admin.register(ErasureStep)
class ErasureStepAdmin(RegionalModelAdmin):
    list_display = ("request_id", "position", "name", "status", "rows", "finished_at")


@admin.register(Package)
class PackageAdmin(RegionalModelAdmin):
    list_display = ("request_id", "size", "created_at", "expires_at")
    exclude = ("ciphertext", "wrapped_key")


@admin.register(RequestDirectory)
class RequestDirectoryAdmin(admin.ModelAdmin):
    list_display = ("request_id", "region", "client_id", "created_at")
    readonly_fields = (
        "request_id",
        "region",
        "client_id",
        "idempotency_key",
        "body_hash",
        "created_at",
    )

    def has_add_permission(self, request, obj=None):
        return False

    has_change_permission = has_delete_permission = has_add_permission
