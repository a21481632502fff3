"""The officer pages. Each view is wrapped by ``admin.site.admin_view`` (active staff, login
redirect) in ``urls.py`` and checks its own permission (403 otherwise); POST-only actions call
the owning app's service and show its refusal as an admin message, never a 500."""

from __future__ import annotations

import secrets
from uuid import UUID

from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from compliance import crypto
from compliance.audit.services.append import Actor
from compliance.dsar.models import Regulation, RequestType, Status
from compliance.dsar.selectors.requests import request_get
from compliance.dsar.services.errors import IdempotencyConflictError, RequestError
from compliance.dsar.services.export import package_read
from compliance.dsar.services.receipts import erasure_certificate_html
from compliance.dsar.services.report import short_reference
from compliance.dsar.services.requests import (
    request_approve,
    request_extend,
    request_open,
    request_reject,
)
from compliance.identifiers import IdentifierError
from compliance.officer import charts, selectors
from compliance.officer.desk import request_desk, subject_of_request
from compliance.officer.forms import (
    ConfirmForm,
    IntakeForm,
    LookupForm,
    NoteForm,
    PeriodForm,
    ReasonForm,
)
from compliance.officer.permissions import (
    APPROVE_REQUESTS,
    EXPORT_EVIDENCE,
    HANDLE_REQUESTS,
    OPEN_REQUESTS,
    SEGMENT_ACTIONS,
    VIEW_AUDIT,
    VIEW_IDENTITIES,
    VIEW_REQUESTS,
    VIEW_SEGMENTS,
    is_officer,
    require,
)
from compliance.officer.services import (
    assignable_users,
    personal_data_viewed,
    request_assign,
    request_note_add,
)
from compliance.regions import regions
from segments.models import Segment
from segments.selectors.estimate import segment_entry_estimate
from segments.services import definitions
from segments.services.definitions import SegmentGovernanceError


def _context(request, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def home(request):
    """The admin's front page: the DSAR queue for whoever may approve requests; everyone else
    (and ``?apps=1``) gets Django's index of the models they may see."""
    if is_officer(request.user) and "apps" not in request.GET:
        return redirect("officer:queue")
    return admin.site.index(request)


# --- DSAR queue and request page --------------------------------------------------------------
def queue(request):
    require(request, VIEW_REQUESTS)
    filters = {
        "type": (request.GET.get("type") or None, RequestType.choices),
        "status": (request.GET.get("status") or None, Status.choices),
        "region": (request.GET.get("region") or None, [(r, r.upper()) for r in regions()]),
        "regulation": (request.GET.get("regulation") or None, Regulation.choices),
    }
    chosen = {
        name: value if value in dict(choices) else None
        for name, (value, choices) in filters.items()
    }
    rows = selectors.queue_requests(**chosen)
    return TemplateResponse(
        request,
        "admin/officer/queue.html",
        _context(
            request,
            "DSAR queue",
            rows=rows,
            filters=[(name, choices, chosen[name]) for name, (_, choices) in filters.items()],
            overdue=sum(1 for r in rows if r.badge == "overdue"),
            due_soon=sum(1 for r in rows if r.badge == "due_soon"),
            can_approve=request.user.has_perm(APPROVE_REQUESTS),
        ),
    )


def _load_or_404(value: str):
    try:
        return _load(UUID(value))
    except ValueError:
        raise Http404("no such request")


def request_package(request, request_id):
    """Download an access/portability package (audited ``PACKAGE_DOWNLOADED``) for those who
    handle requests; unavailable or expired packages come back as a message."""
    require(request, HANDLE_REQUESTS)
    privacy_request = _load(request_id)
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
    privacy_request = _load(request_id)
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


def _load(request_id):
    found = request_get(request_id=request_id)
    if found is None:
        raise Http404("no such request")
    return found


def request_detail(request, request_id):
    require(request, VIEW_REQUESTS)
    page = selectors.request_page(request=_load(request_id))
    desk = request_desk(request=page.request, preview=page.preview)
    return TemplateResponse(
        request,
        "admin/officer/request.html",
        _context(
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
        request, "admin/officer/request_new.html", _context(request, "Open a request", form=form)
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
    privacy_request = _load(request_id)
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
    privacy_request = _load(request_id)
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


def request_confirm(request, request_id):
    """The confirmation step of an irreversible action (approving an erasure): what will go,
    per kind, and the request's short reference to type. POST approves when it matches."""
    require(request, APPROVE_REQUESTS)
    privacy_request = _load(request_id)
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
        _context(
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
    privacy_request = _load(request_id)
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


# --- subject lookup ---------------------------------------------------------------------------
def subject_lookup(request):
    """Find a person by identifier (blind index -> region); showing them is audited."""
    require(request, VIEW_IDENTITIES)
    form = LookupForm(request.POST or None)
    context = {"form": form, "result": None, "not_found": False, "erased": False}
    if request.method == "GET" and request.GET.get("request"):
        # from a request page: the person the request is about (audited like any lookup)
        privacy_request = _load_or_404(request.GET["request"])
        subject = subject_of_request(request=privacy_request)
        if subject is None:
            context["erased" if privacy_request.type == RequestType.ERASURE else "not_found"] = True
        else:
            context["result"] = selectors.subject_view(
                region=privacy_request.region, subject=subject
            )
            context["from_request"] = privacy_request
            personal_data_viewed(
                subject=subject,
                region=privacy_request.region,
                actor=Actor.user(request.user),
                view="subject_lookup_from_request",
            )
    if request.method == "POST" and form.is_valid():
        try:
            found = selectors.subject_locate(
                identifier_type=form.cleaned_data["identifier_type"],
                value=form.cleaned_data["value"],
            )
        except IdentifierError as exc:
            form.add_error("value", str(exc))
            found = None
        else:
            if found == "erased":
                context["erased"] = True
            elif found is None:
                context["not_found"] = True
            else:
                region, subject = found
                context["result"] = selectors.subject_view(region=region, subject=subject)
                personal_data_viewed(
                    subject=subject,
                    region=region,
                    actor=Actor.user(request.user),
                    view="subject_lookup",
                )
    return TemplateResponse(
        request, "admin/officer/subject.html", _context(request, "Subject lookup", **context)
    )


# --- segment review ---------------------------------------------------------------------------
def segment_review(request):
    require(request, VIEW_SEGMENTS)
    due = selectors.segments_for_review()
    allowed = {name: request.user.has_perm(perm) for name, perm in SEGMENT_ACTIONS.items()}
    return TemplateResponse(
        request,
        "admin/officer/segments.html",
        _context(request, "Segment review", due=due, allowed=allowed),
    )


@require_POST
def segment_action(request, key, action):
    """approve | activate | pause | review through the governance service (403 without the
    permission; governance refusals come back as messages)."""
    if action not in SEGMENT_ACTIONS:
        raise Http404("unknown action")
    require(request, SEGMENT_ACTIONS[action])
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise Http404("no such segment")
    service = {
        "approve": definitions.segment_approve,
        "activate": definitions.segment_activate,
        "pause": definitions.segment_pause,
        "review": definitions.segment_review,
    }[action]
    try:
        updated = service(segment=segment, user=request.user)
    except SegmentGovernanceError as exc:
        messages.error(request, f"{segment.name} ({key}) was not changed: {exc}.")
    else:
        messages.success(request, segment_message(segment=updated, action=action))
    detail = reverse("officer:segment", args=[key])
    return HttpResponseRedirect(
        detail if request.POST.get("next") == "detail" else reverse("officer:segments")
    )


def segment_message(*, segment: Segment, action: str) -> str:
    """What an action did, in plain words, and what comes next."""
    name = f"{segment.name} ({segment.key})"
    if action == "approve":
        problems = definitions.activation_problems(segment)
        nxt = (
            "Activate it to start placing people in it."
            if not problems
            else "Before it can go live: " + "; ".join(problems.values()) + "."
        )
        return f"{name} is approved but not live yet. {nxt}"
    if action == "activate":
        return f"{name} is live: people who match it and have given consent now enter it."
    if action == "pause":
        return f"{name} is paused: nobody new enters it; people can still leave it."
    return f"{name} is marked reviewed; the next review is due {segment.review_due_at:%Y-%m-%d}."


def segment_detail(request, key):
    """What an approval approves: the definition, layers, purposes, motion, measurement plan,
    proposer and origin, what is missing for activation and an estimate of who would enter
    (per region, with the share the consent gate refuses); the actions on the same page."""
    require(request, VIEW_SEGMENTS)
    segment = (
        Segment.objects.select_related("owner", "proposed_by", "proposed_by_client", "approved_by")
        .filter(key=key)
        .first()
    )
    if segment is None:
        raise Http404("no such segment")
    allowed = {name: request.user.has_perm(perm) for name, perm in SEGMENT_ACTIONS.items()}
    return TemplateResponse(
        request,
        "admin/officer/segment.html",
        _context(
            request,
            f"Segment {segment.name}",
            s=segment,
            purposes=selectors.purposes_named(keys=segment.required_purposes),
            problems={
                k: v for k, v in definitions.activation_problems(segment).items() if k != "status"
            },
            estimate=segment_entry_estimate(segment=segment),
            allowed=allowed,
            own_suggestion=segment.origin == "ai_suggested"
            and segment.proposed_by_id == request.user.pk,
        ),
    )


# --- dashboard --------------------------------------------------------------------------------
def dashboard(request):
    require(request, VIEW_REQUESTS)
    weekly = selectors.dsar_weekly()
    labels = [f"{w:%d %b}" for w in weekly["weeks"]]
    types = [t for t in RequestType.values if any(c[t] for c in weekly["received"])]
    segments = selectors.segments_by_layer()
    today = timezone.now().date()
    period = PeriodForm(
        request.GET if "start" in request.GET else None,
        initial={"start": today.replace(day=1), "end": today},
    )
    evidence = None
    if request.user.has_perm(EXPORT_EVIDENCE):
        start, end = today.replace(day=1), today
        if period.is_bound and period.is_valid():
            start, end = period.cleaned_data["start"], period.cleaned_data["end"]
        query = f"from={start.isoformat()}&to={end.isoformat()}"
        evidence = {
            "report": f"{reverse('admin:audit_auditevent_report')}?{query}",
            "bundle": f"{reverse('admin:audit_auditevent_export')}?{query}&download=1",
            "start": start,
            "end": end,
        }
    context = _context(
        request,
        "Privacy dashboard",
        dsar_chart=charts.stacked_columns(
            title="Requests received per week by type",
            labels=labels,
            series={t: [c[t] for c in weekly["received"]] for t in types} or {"none": [0] * 8},
        ),
        on_time_chart=charts.percent_columns(
            title="Requests closed on time per week", labels=labels, values=weekly["on_time"]
        ),
        consent_chart=charts.stacked_bars(
            title="Consent decisions per source (30 days)", rows=selectors.consent_per_source()
        ),
        layer_chart=charts.bars(title="Active segments by layer", items=segments["layers"]),
        review_chart=charts.bars(title="Segments by review state", items=segments["review"]),
        chains=selectors.chains() if request.user.has_perm(VIEW_AUDIT) else None,
        evidence=evidence,
        period=period,
    )
    return TemplateResponse(request, "admin/officer/dashboard.html", context)
