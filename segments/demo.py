"""Demo segments (idempotent, in any state): one active segment with the consenting demo
subjects in it, and one AI-suggested draft waiting for a privacy officer's review.

What the officer did through the admin or the API stays done: a paused or retired segment is
not reactivated (and gets no new members). When no AI-suggested draft awaits review any more
(approved, activated, retired), the next run proposes another one, so the story is there again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from compliance.models import SubjectDirectory
from compliance.roles import PRIVACY_OFFICER
from segments.models import Origin, Segment, Status
from segments.services.definitions import (
    segment_activate,
    segment_approve,
    segment_create,
)
from segments.services.memberships import memberships_apply


def _demo_owner():
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="segments-owner", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    return User.objects.get(pk=user.pk)


def load(*, actor, stdout) -> None:
    owner = _demo_owner()
    active = Segment.objects.filter(key="demo-engaged-readers").first()
    if active is None:
        active = segment_create(
            key="demo-engaged-readers",
            name="Engaged readers",
            layers=["engagement", "behavioral"],
            owner=owner,
            motion="campaign",
            motion_detail="newsletter upsell campaign",
            measurement_metric="subscription rate after 30 days",
            control_group_share="0.1",
            user=owner,
        )
    if active.status == Status.DRAFT:
        active = segment_approve(segment=active, user=owner)
    if active.status == Status.APPROVED:
        active = segment_activate(segment=active, user=owner)
    if not Segment.objects.filter(origin=Origin.AI_SUGGESTED, status=Status.DRAFT).exists():
        taken = Segment.objects.filter(key__startswith="demo-likely-churn").count()
        segment_create(
            key="demo-likely-churn" + (f"-{taken + 1}" if taken else ""),
            name="Likely churn (AI suggested)",
            layers=["intent"],
            origin="ai_suggested",
            owner=owner,
            motion="sales_play",
            measurement_metric="retention",
            control_group_share="0.2",
            user=owner,
        )
    if active.status != Status.ACTIVE:
        stdout.write(f"demo segments: {active.key} is {active.status} (left as it is)")
        return
    subject_ids = list(SubjectDirectory.objects.values_list("subject_id", flat=True).distinct())
    result = memberships_apply(segment=active, enters=subject_ids, exits=[], actor=actor)
    stdout.write(
        f"demo segments: {active.key} active: {len(result.entered)} entered, "
        f"{len(result.unchanged)} already members, {len(result.refused)} refused "
        "(no consent or restricted)"
    )
