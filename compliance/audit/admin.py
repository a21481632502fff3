"""Read-only audit browser over any database's chain, evidence report and bundle download.

Nobody may add, change or delete audit rows here, superusers included. The database is chosen
with the ``db`` filter (``?db=eu``); the report and the bundle need ``audit.export_auditevent``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from compliance.admin_base import ReadOnlyAdminMixin
from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.periods import PeriodError, period_parse
from compliance.audit.selectors.evidence import evidence_stats, report_render
from compliance.audit.selectors.rows import COLUMNS
from compliance.audit.selectors.status import chain_status
from compliance.audit.services.append import Actor
from compliance.audit.services.checkpoints import ChainDamagedError
from compliance.audit.services.evidence import evidence_report_viewed
from compliance.audit.services.export import audit_export
from compliance.audit.services.witness import WitnessError
from compliance.officer.desk import actor_names

EXPORT_PERMISSION = "audit.export_auditevent"


def selected_alias(request) -> str:
    """The database whose chain is browsed: ``?db=`` (also inside ``_changelist_filters``)."""
    alias = request.GET.get("db")
    if not alias:
        preserved = parse_qs(request.GET.get("_changelist_filters", ""))
        alias = (preserved.get("db") or [None])[0]
    return alias if alias in settings.DATABASES else "default"


class DatabaseFilter(admin.SimpleListFilter):
    title = "database (chain)"
    parameter_name = "db"

    def lookups(self, request, model_admin):
        return [(alias, alias) for alias in settings.DATABASES]

    def queryset(self, request, queryset):
        return queryset  # the alias itself is applied in get_queryset

    def choices(self, changelist):
        current = self.value() or "default"
        for alias, title in self.lookup_choices:
            yield {
                "selected": current == alias,
                "query_string": changelist.get_query_string({self.parameter_name: alias}),
                "display": title,
            }


class CodeFilter(admin.SimpleListFilter):
    title = "event code"
    parameter_name = "code"

    def lookups(self, request, model_admin):
        return [(str(int(c)), f"{int(c)} {c.name.lower()}") for c in AuditCode]

    def queryset(self, request, queryset):
        return queryset.filter(code=int(self.value())) if self.value() else queryset


class ActorTypeFilter(admin.SimpleListFilter):
    title = "actor type"
    parameter_name = "actor_type"

    def lookups(self, request, model_admin):
        return [("user", "staff user"), ("client", "API client"), ("system", "system")]

    def queryset(self, request, queryset):
        return queryset.filter(actor_type=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "seq",
        "occurred_at",
        "code",
        "code_label",
        "actor",
        "subject_token",
        "object_type",
        "object_id",
        "short_hash",
    )
    list_filter = (DatabaseFilter, CodeFilter, ActorTypeFilter, "occurred_at")
    search_fields = ("=subject_token", "=actor_id", "=object_id")
    search_help_text = "exact subject token, actor id or object id"
    ordering = ("-seq",)
    actions = None
    list_per_page = 100
    show_full_result_count = False
    change_list_template = "admin/audit/auditevent/change_list.html"
    readonly_fields = COLUMNS

    @admin.display(description="event")
    def code_label(self, obj):
        try:
            return AuditCode(obj.code).name.lower()
        except ValueError:
            return ""

    @admin.display(description="actor")
    def actor(self, obj):
        """Who acted, by name: the staff user's username, the API client's name, or the job."""
        return getattr(obj, "actor_name", "") or f"{obj.actor_type} {obj.actor_id}"

    def get_changelist_instance(self, request):
        """Names every shown row's actor in two queries (users, API clients)."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        names = actor_names(rows)
        for row in rows:
            row.actor_name = names.get((row.actor_type, row.actor_id), "")
        return changelist

    @admin.display(description="hash")
    def short_hash(self, obj):
        return obj.hash[:12]

    def get_queryset(self, request):
        return AuditEvent.objects.using(selected_alias(request)).order_by("-seq")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django opens the transaction on the router's database; ours is per request
        with transaction.atomic(using=selected_alias(request)):
            return self._changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied("the audit log is append-only")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("report/", view(self.report_view), name="audit_auditevent_report"),
            path("export/", view(self.export_view), name="audit_auditevent_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        alias = selected_alias(request)
        extra_context = {
            **(extra_context or {}),
            "chain": chain_status(using=alias),
            "can_export": request.user.has_perm(EXPORT_PERMISSION),
            "selected_db": alias,
        }
        return super().changelist_view(request, extra_context)

    # --- evidence ----------------------------------------------------------------------------
    def _period(self, request):
        today = timezone.now().date()
        start = request.GET.get("from") or (today.replace(day=1)).isoformat()
        end = request.GET.get("to") or today.isoformat()
        return start, end

    def _require_export(self, request) -> None:
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied("needs the permission to export audit evidence")

    def report_view(self, request):
        self._require_export(request)
        start_text, end_text = self._period(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Audit evidence report",
            "opts": self.model._meta,
            "from": start_text,
            "to": end_text,
        }
        try:
            start, end = period_parse(start=start_text, end=end_text)
        except PeriodError as exc:
            context["error"] = str(exc)
            return TemplateResponse(request, "admin/audit/auditevent/report.html", context)
        aliases = list(settings.DATABASES)
        stats = evidence_stats(aliases=aliases, start=start, end=end)
        chains = [chain_status(using=alias) for alias in aliases]
        evidence_report_viewed(actor=Actor.user(request.user), start=start, end=end)
        context["report"] = report_render(
            stats=stats, start=start, end=end, chains=chains, standalone=False
        )
        return TemplateResponse(request, "admin/audit/auditevent/report.html", context)

    def export_view(self, request):
        self._require_export(request)
        start_text, end_text = self._period(request)
        if "download" not in request.GET:
            context = {
                **self.admin_site.each_context(request),
                "title": "Download an audit evidence bundle",
                "opts": self.model._meta,
                "from": start_text,
                "to": end_text,
                "databases": list(settings.DATABASES),
            }
            return TemplateResponse(request, "admin/audit/auditevent/export.html", context)
        changelist = reverse("admin:audit_auditevent_changelist")
        try:
            start, end = period_parse(start=start_text, end=end_text)
        except PeriodError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:audit_auditevent_export"))
        aliases = [a for a in request.GET.getlist("db") if a in settings.DATABASES] or None
        workdir = Path(tempfile.mkdtemp(prefix="audit-export-"))
        name = f"audit-evidence-{start:%Y%m%d}-{end:%Y%m%d}.zip"
        try:
            result = audit_export(
                start=start,
                end=end,
                out=workdir / name,
                actor=Actor.user(request.user),
                aliases=aliases,
            )
        except (ChainDamagedError, WitnessError) as exc:
            self.message_user(request, f"not exported: {exc}", messages.ERROR)
            return HttpResponseRedirect(changelist)
        handle = result.path.open("rb")
        result.path.unlink()  # the open handle keeps the data until the response is sent
        workdir.rmdir()
        return FileResponse(
            handle, as_attachment=True, filename=name, content_type="application/zip"
        )
