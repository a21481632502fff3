"""Segment review: the list due for review, one segment's page and the governance actions."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from compliance.officer import selectors
from compliance.officer.forms import ReviewForm
from compliance.officer.permissions import (
    SEGMENT_ACTIONS,
    VIEW_SEGMENTS,
    require,
)
from compliance.officer.views.common import page_context
from compliance.plans.selectors.instrumentation import UNRELIABLE_DAYS, unreliable_segments
from segments.models import LiftPeriod, Segment
from segments.selectors.estimate import segment_entry_estimate
from segments.selectors.lift import lift_report_if_computed
from segments.services import definitions, reviews
from segments.services.definitions import SegmentGovernanceError

#: past reviews listed on a segment's page
REVIEWS_SHOWN = 8


def segment_review(request):
    require(request, VIEW_SEGMENTS)
    due = selectors.segments_for_review()
    allowed = {name: request.user.has_perm(perm) for name, perm in SEGMENT_ACTIONS.items()}
    return TemplateResponse(
        request,
        "admin/officer/segments.html",
        page_context(
            request,
            "Segment review",
            due=due,
            allowed=allowed,
            unreliable=unreliable_segments(segments=Segment.objects.exclude(status="retired")),
            unreliable_days=UNRELIABLE_DAYS,
        ),
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
        "review": reviews.segment_review,
    }[action]
    extra = {}
    if action == "review":
        form = review_form(request, segment=segment)
        if not form.is_valid():  # the page again, with the errors and what was typed
            return segment_page(request, segment=segment, form=form)
        extra = form.cleaned_data
    try:
        updated = service(segment=segment, user=request.user, **extra)
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
    decided = segment.reviews.first()
    what = f" with the decision: {decided.get_decision_display()}" if decided.decision else ""
    return (
        f"{name} is marked reviewed{what}; the next review is due {segment.review_due_at:%Y-%m-%d}."
    )


def review_form(request, *, segment: Segment) -> ReviewForm:
    """The review form, bound to the POST if any; a decision is required once the segment's
    lift has been computed (there is evidence to decide on)."""
    computed = lift_report_if_computed(segment=segment, period=LiftPeriod.SINCE_REVIEW)
    data = request.POST if request.method == "POST" else None
    return ReviewForm(data, decision_required=computed is not None)


def segment_detail(request, key):
    """What an approval approves: the definition, layers, purposes, motion, measurement plan,
    proposer and origin, what is missing for activation and an estimate of who would enter
    (per region, with the share the consent gate refuses); the lift since the last review and
    the review form (decision: iterate, keep or cut) with past reviews; the actions."""
    require(request, VIEW_SEGMENTS)
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise Http404("no such segment")
    return segment_page(request, segment=segment, form=review_form(request, segment=segment))


def segment_page(request, *, segment: Segment, form: ReviewForm) -> TemplateResponse:
    segment = Segment.objects.select_related(
        "owner", "proposed_by", "proposed_by_client", "approved_by"
    ).get(pk=segment.pk)
    allowed = {name: request.user.has_perm(perm) for name, perm in SEGMENT_ACTIONS.items()}
    return TemplateResponse(
        request,
        "admin/officer/segment.html",
        page_context(
            request,
            f"Segment {segment.name}",
            s=segment,
            purposes=selectors.purposes_named(keys=segment.required_purposes),
            problems={
                k: v for k, v in definitions.activation_problems(segment).items() if k != "status"
            },
            estimate=segment_entry_estimate(segment=segment),
            unreliable=unreliable_segments(segments=[segment]).get(segment.key),
            unreliable_days=UNRELIABLE_DAYS,
            allowed=allowed,
            own_suggestion=segment.origin == "ai_suggested"
            and segment.proposed_by_id == request.user.pk,
            lift=lift_report_if_computed(segment=segment, period=LiftPeriod.SINCE_REVIEW),
            review_form=form,
            reviews=list(segment.reviews.select_related("reviewed_by")[:REVIEWS_SHOWN]),
        ),
    )
