"""Segment reviews: the quarterly decision on the lift since the previous review.

``segment_review`` restarts the review interval and writes a ``SegmentReview`` (who, when, the
decision: iterate, keep or cut, and the lift figures it was made on) with one SEGMENT_REVIEWED
entry on the control chain whose payload carries the decision and the figures (aggregates only:
no subject, no note).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor
from segments.models import (
    LiftPeriod,
    ReviewDecision,
    Segment,
    SegmentReview,
    Status,
)
from segments.selectors.lift import lift_figures, lift_report_if_computed
from segments.services.definitions import CONTROL, _audit, _require_perm
from segments.services.errors import SegmentGovernanceError

#: the longest review note (the reviewer's own words, kept on the review, not in the log)
MAX_NOTE = 2000


def segment_review(
    *, segment: Segment, user, client=None, decision: str = "", note: str = ""
) -> Segment:
    """Record a review now (needs review_segment); restarts the review interval.

    ``decision`` (``ReviewDecision``: iterate, keep or cut; blank for none) is stored on a
    ``SegmentReview`` with ``lift_figures`` of the lift since the previous review (``None``
    before any ``lift_compute``), and the audit entry's payload carries both (aggregates only;
    ``note`` stays on the review row). Unknown decisions and notes over ``MAX_NOTE``
    characters raise ``SegmentGovernanceError`` (code ``invalid``) naming the field.
    """
    _require_perm(user, "review_segment", "review")
    if decision not in ("", *ReviewDecision.values):
        raise SegmentGovernanceError(
            f"decision must be one of {', '.join(ReviewDecision.values)}",
            code="invalid",
            field="decision",
        )
    if len(note) > MAX_NOTE:
        raise SegmentGovernanceError(
            f"note must be at most {MAX_NOTE} characters", code="invalid", field="note"
        )
    with transaction.atomic(using=CONTROL):
        locked = Segment.objects.select_for_update().get(pk=segment.pk)
        if locked.status in (Status.DRAFT, Status.RETIRED):
            raise SegmentGovernanceError(
                f"a {locked.status} segment is not reviewed", code="illegal_transition"
            )
        figures = lift_since_review(segment=locked)
        locked.last_reviewed_at = timezone.now()
        locked.save(using=CONTROL)
        SegmentReview.objects.using(CONTROL).create(
            segment=locked,
            reviewed_at=locked.last_reviewed_at,
            reviewed_by=user,
            decision=decision,
            note=note,
            lift=figures,
        )
        _audit(
            segment=locked,
            code=AuditCode.SEGMENT_REVIEWED,
            actor=Actor.user(user),
            frm=locked.status,
            to=locked.status,
            fields=["last_reviewed_at"],
            extra={"decision": decision, "lift": figures},
        )
    return locked


def lift_since_review(*, segment: Segment) -> dict | None:
    """``lift_figures`` of the segment's lift since its last review, ``None`` when no region
    has computed it."""
    report = lift_report_if_computed(segment=segment, period=LiftPeriod.SINCE_REVIEW)
    return None if report is None else lift_figures(report)
