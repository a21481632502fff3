"""A privacy officer's decisions on a request: approve (an erasure through a typed confirmation), reject, extend."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from compliance.audit.services.append import Actor
from compliance.dsar.models import RequestType
from compliance.dsar.services.errors import RequestError
from compliance.dsar.services.requests import (
    request_approve,
    request_extend,
    request_reject,
)
from compliance.officer import selectors
from compliance.officer.desk import request_desk
from compliance.officer.forms import (
    ConfirmForm,
    ReasonForm,
)
from compliance.officer.permissions import (
    APPROVE_REQUESTS,
    require,
)
from compliance.officer.views.common import page_context, request_or_404


def request_confirm(request, request_id):
    """The confirmation step of an irreversible action (approving an erasure): what will go,
    per kind, and the request's short reference to type. POST approves when it matches."""
    require(request, APPROVE_REQUESTS)
    privacy_request = request_or_404(request_id)
    target = reverse("officer:request", args=[privacy_request.pk])
    if privacy_request.type != RequestType.ERASURE or privacy_request.is_terminal:
        return HttpResponseRedirect(target)
    page = selectors.request_page(request=privacy_request)
    desk = request_desk(request=privacy_request, preview=page.preview)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        typed = form.cleaned_data["reference"].replace("-", "").strip().upper()
        if typed != desk.reference:
            form.add_error(
                "reference",
                f"That is not this request's reference ({len(desk.reference)} characters, shown "
                f"above). Nothing was erased.",
            )
        else:
            try:
                request_approve(request=privacy_request, actor=Actor.user(request.user))
            except RequestError as exc:
                messages.error(request, f"Not approved: {exc}")
            else:
                messages.success(
                    request,
                    f"Erasure {desk.reference} approved: it runs now in region "
                    f"{privacy_request.region.upper()}.",
                )
            return HttpResponseRedirect(target)
    return TemplateResponse(
        request,
        "admin/officer/confirm.html",
        page_context(
            request,
            f"Approve erasure {desk.reference}?",
            r=privacy_request,
            desk=desk,
            form=form,
        ),
    )


@require_POST
def request_action(request, request_id, action):
    """approve | reject (reason) | extend (reason): privacy officers only (403 otherwise)."""
    if action not in ("approve", "reject", "extend"):
        raise Http404("unknown action")
    require(request, APPROVE_REQUESTS)
    privacy_request = request_or_404(request_id)
    actor = Actor.user(request.user)
    target = reverse("officer:request", args=[privacy_request.pk])
    try:
        if action == "approve" and privacy_request.type == RequestType.ERASURE:
            # irreversible: only through the confirmation step (the reference typed)
            return HttpResponseRedirect(
                reverse("officer:request_confirm", args=[privacy_request.pk])
            )
        if action == "approve":
            request_approve(request=privacy_request, actor=actor)
            messages.success(request, "Approved: the job runs in the request's region.")
        else:
            form = ReasonForm(request.POST)
            if not form.is_valid():
                messages.error(request, f"A reason is needed to {action} a request.")
                return HttpResponseRedirect(target)
            reason = form.cleaned_data["reason"]
            if action == "reject":
                request_reject(request=privacy_request, actor=actor, reason=reason)
                messages.success(request, "Rejected.")
            else:
                updated = request_extend(request=privacy_request, actor=actor, reason=reason)
                messages.success(request, f"Extended: now due {updated.due_at:%Y-%m-%d}.")
    except RequestError as exc:
        messages.error(request, f"Not done: {exc}")
    return HttpResponseRedirect(target)
