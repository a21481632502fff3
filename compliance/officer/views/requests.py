"""A request's page and what those who handle requests do on it: open, download, note, assign."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from compliance import crypto
from compliance.audit.services.append import Actor
from compliance.dsar.models import Status
from compliance.dsar.services.errors import IdempotencyConflictError, RequestError
from compliance.dsar.services.export import package_read
from compliance.dsar.services.receipts import erasure_certificate_html
from compliance.dsar.services.report import short_reference
from compliance.dsar.services.requests import (
    request_open,
)
from compliance.officer import selectors
from compliance.officer.desk import request_desk
from compliance.officer.forms import (
    IntakeForm,
    NoteForm,
)
from compliance.officer.permissions import (
    APPROVE_REQUESTS,
    HANDLE_REQUESTS,
    OPEN_REQUESTS,
    VIEW_IDENTITIES,
    VIEW_REQUESTS,
    require,
)
from compliance.officer.services import (
    assignable_users,
    request_assign,
    request_note_add,
)
from compliance.officer.views.common import page_context, request_or_404


def request_detail(request, request_id):
    require(request, VIEW_REQUESTS)
    page = selectors.request_page(request=request_or_404(request_id))
    desk = request_desk(request=page.request, preview=page.preview)
    return TemplateResponse(
        request,
        "admin/officer/request.html",
        page_context(
            request,
            f"{page.request.get_type_display()} request {desk.reference}",
            page=page,
            r=page.request,
            desk=desk,
            can_approve=request.user.has_perm(APPROVE_REQUESTS),
            can_handle=request.user.has_perm(HANDLE_REQUESTS),
            can_lookup=request.user.has_perm(VIEW_IDENTITIES),
            staff_users=assignable_users() if request.user.has_perm(HANDLE_REQUESTS) else [],
            note_form=NoteForm(),
            running=page.request.status == Status.PROCESSING,
        ),
    )


def request_package(request, request_id):
    """Download an access/portability package (audited ``PACKAGE_DOWNLOADED``) for those who
    handle requests; unavailable or expired packages come back as a message."""
    require(request, HANDLE_REQUESTS)
    privacy_request = request_or_404(request_id)
    try:
        data, _ = package_read(request=privacy_request, actor=Actor.user(request.user))
    except RequestError as exc:
        messages.error(request, f"No package to download: {exc}.")
        return HttpResponseRedirect(reverse("officer:request", args=[privacy_request.pk]))
    response = HttpResponse(data, content_type="application/zip")
    name = f"request-{short_reference(privacy_request.pk)}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def request_certificate(request, request_id):
    """The erasure certificate (HTML, printable) beside the signed receipt; ``?format=json``
    gives the receipt, its signature and the public key."""
    require(request, VIEW_REQUESTS)
    privacy_request = request_or_404(request_id)
    if not privacy_request.receipt:
        raise Http404("no receipt: the erasure has not completed")
    if request.GET.get("format") == "json":
        body = {
            "receipt": privacy_request.receipt,
            "signature": privacy_request.receipt_signature,
            "algorithm": "Ed25519 over compact key-sorted UTF-8 JSON of receipt",
            "public_key_pem": crypto.public_key_pem().decode(),
        }
        response = JsonResponse(body, json_dumps_params={"indent": 2})
        name = f"erasure-receipt-{short_reference(privacy_request.pk)}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return HttpResponse(erasure_certificate_html(request=privacy_request))


def request_new(request):
    """Open a request in the admin through ``request_open`` (the API's service: same
    validation, same idempotency: the form's token is the key, per user)."""
    require(request, OPEN_REQUESTS)
    form = IntakeForm(request.POST or None, initial={"intake_token": secrets.token_urlsafe(24)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            opened = request_open(
                type=data["type"],
                regulation=data["regulation"],
                identifiers=form.identifiers(),
                verification_method=data["verification_method"],
                actor=Actor.user(request.user),
                idempotency_key=f"admin:{request.user.pk}:{data['intake_token']}",
                jurisdiction=data["jurisdiction"].upper(),
                purposes=form.purpose_keys(),
            )
        except IdempotencyConflictError:
            form.add_error(
                None,
                "This form already opened a request with other details; open a fresh form "
                "to open another request.",
            )
        except RequestError as exc:
            name = _intake_field(exc.field)
            form.add_error(name, str(exc))
        else:
            privacy_request = opened.request
            if opened.created and data["notes"]:
                request_note_add(request=privacy_request, user=request.user, text=data["notes"])
            reference = short_reference(privacy_request.pk)
            if opened.created:
                messages.success(
                    request,
                    f"Request {reference} opened: {privacy_request.get_status_display().lower()}.",
                )
            else:
                messages.info(request, f"Request {reference} was already opened by this form.")
            return HttpResponseRedirect(reverse("officer:request", args=[privacy_request.pk]))
    return TemplateResponse(
        request,
        "admin/officer/request_new.html",
        page_context(request, "Open a request", form=form),
    )


def _intake_field(field: str | None) -> str | None:
    """The intake form's field for a service error's ``field`` (``None``: the whole form)."""
    if not field:
        return None
    if field.startswith("identifiers"):
        return "identifier_value_2" if field.startswith("identifiers[1]") else "identifier_value_1"
    return field if field in IntakeForm.base_fields else None


@require_POST
def request_note(request, request_id):
    """Add an internal note (support agents and officers; audited, never exported)."""
    require(request, HANDLE_REQUESTS)
    privacy_request = request_or_404(request_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        request_note_add(request=privacy_request, user=request.user, text=form.cleaned_data["text"])
        messages.success(request, "Note added. Only staff can read it.")
    else:
        messages.error(request, "A note needs some text.")
    return HttpResponseRedirect(reverse("officer:request", args=[privacy_request.pk]))


@require_POST
def request_assign_view(request, request_id):
    """Assign the request to a staff user who handles requests (or to nobody)."""
    require(request, HANDLE_REQUESTS)
    privacy_request = request_or_404(request_id)
    chosen = request.POST.get("assignee", "")
    assignee = None
    if chosen:
        assignee = next((u for u in assignable_users() if str(u.pk) == chosen), None)
        if assignee is None:
            messages.error(request, "That user cannot handle requests.")
            return HttpResponseRedirect(reverse("officer:request", args=[privacy_request.pk]))
    request_assign(request=privacy_request, assignee=assignee, user=request.user)
    messages.success(
        request, f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."
    )
    return HttpResponseRedirect(reverse("officer:request", args=[privacy_request.pk]))
