"""Segment definitions and their governance: the one path for admin, API and jobs alike.

Rules (each raises ``SegmentGovernanceError``, nothing is written):

* status moves only along ``TRANSITIONS`` (draft -> approved -> active <-> paused; any but
  retired -> retired); anything else is an illegal transition;
* approving needs ``segments.approve_segment``; an ``ai_suggested`` segment must be approved
  by a person other than its proposer (neither the proposing user nor a token of the proposing
  tool);
* activating needs ``segments.activate_segment`` and an approved (or paused) segment with an
  owner, a motion and a measurement plan (metric and a control group share in (0, 1));
* marking reviewed needs ``segments.review_segment`` (``segments.services.reviews``: with a
  decision on the lift since the previous review and the figures it was made on);
* once activated (a holdout salt drawn) ``control_group_share`` cannot change: a new share
  would move people between arms and mix two experiments in one report (code ``share_fixed``);
* API clients without a staff user (tools) may create and edit drafts but never approve,
  activate, pause or review: those take a ``user``.

Every change writes one audit event on the control chain (``default``) in the same
transaction: SEGMENT_CREATED, SEGMENT_CHANGED, SEGMENT_STATUS_CHANGED or SEGMENT_REVIEWED with
payload ``{"from": status, "to": status, "fields": [changed field names]}``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from segments.holdout import holdout_salt_new
from segments.models import Origin, Segment, Status, default_purposes
from segments.selectors.segments import segments_review_overdue
from segments.services.errors import SegmentGovernanceError
from segments.services.fields import field_clean, layers_clean, purposes_clean, share_clean

CONTROL = "default"

TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.APPROVED, Status.RETIRED},
    Status.APPROVED: {Status.ACTIVE, Status.RETIRED},
    Status.ACTIVE: {Status.PAUSED, Status.RETIRED},
    Status.PAUSED: {Status.ACTIVE, Status.RETIRED},
    Status.RETIRED: set(),
}

#: the motion and the measurement plan: who acts on the segment and how its lift is measured
PLAN_FIELDS = (
    "owner",
    "motion",
    "motion_detail",
    "measurement_metric",
    "control_group_share",
    "conversion_event",
    "value_property",
    "attribution_window_days",
)
#: fields a definition edit may change (status and approval only move through transitions)
EDITABLE_FIELDS = (
    "name",
    "description",
    *PLAN_FIELDS,
    "layers",
    "required_purposes",
    "review_interval_days",
)


#: why ``control_group_share`` is refused once the segment has been activated
SHARE_FIXED = (
    "control_group_share cannot change once the segment has been activated: a new share would "
    "move people between treatment and control and mix two experiments in one lift report. "
    "Create a new segment with the share you want (and retire this one), or keep the share"
)


def caller_actor(*, user=None, client=None) -> Actor:
    """The audit actor of a call: the staff user if any, else the API client, else system."""
    if user is not None:
        return Actor.user(user)
    if client is not None:
        return Actor.client(client)
    return Actor.system("segments")


def _audit(
    *,
    segment: Segment,
    code: AuditCode,
    actor: Actor,
    frm: str,
    to: str,
    fields,
    extra: dict | None = None,
) -> None:
    audit_append(
        using=CONTROL,
        entries=[
            AuditEntry(
                code=code,
                actor=actor,
                object_type="segment",
                object_id=segment.key,
                payload={"from": frm, "to": to, "fields": sorted(fields), **(extra or {})},
            )
        ],
    )


def segment_create(
    *,
    key: str,
    name: str,
    layers: Iterable[str],
    origin: str = Origin.MANUAL,
    required_purposes: Iterable[str] | None = None,
    description: str = "",
    owner=None,
    motion: str = "",
    motion_detail: str = "",
    measurement_metric: str = "",
    control_group_share=None,
    conversion_event: str = "",
    value_property: str = "",
    attribution_window_days: int = 90,
    review_interval_days: int = 90,
    user=None,
    client=None,
) -> Segment:
    """Create a draft definition proposed by ``user`` (or the tool ``client``); audited.

    ``required_purposes`` defaults to the purposes of ``layers`` (``LAYER_PURPOSES``).
    """
    if origin not in Origin.values:
        raise SegmentGovernanceError(f"unknown origin {origin!r}", code="invalid", field="origin")
    if Segment.objects.filter(key=key).exists():
        raise SegmentGovernanceError(f"segment {key!r} exists", code="exists", field="key")
    layers = layers_clean(layers)
    if not layers:
        raise SegmentGovernanceError("at least one layer is needed", code="invalid", field="layers")
    purposes = purposes_clean(
        default_purposes(layers) if required_purposes is None else required_purposes
    )
    segment = Segment(
        key=key,
        name=name,
        description=description,
        owner=owner,
        motion=field_clean("motion", motion),
        motion_detail=motion_detail,
        measurement_metric=measurement_metric,
        control_group_share=share_clean(control_group_share),
        conversion_event=field_clean("conversion_event", conversion_event),
        value_property=field_clean("value_property", value_property),
        attribution_window_days=field_clean("attribution_window_days", attribution_window_days),
        layers=layers,
        required_purposes=purposes,
        origin=origin,
        status=Status.DRAFT,
        proposed_by=user,
        proposed_by_client=client,
        review_interval_days=field_clean("review_interval_days", review_interval_days),
    )
    with transaction.atomic(using=CONTROL):
        segment.save(using=CONTROL)
        _audit(
            segment=segment,
            code=AuditCode.SEGMENT_CREATED,
            actor=caller_actor(user=user, client=client),
            frm="",
            to=Status.DRAFT,
            fields=["key", *(f for f in EDITABLE_FIELDS if getattr(segment, f) not in ("", None))],
        )
    return segment


def segment_update(*, segment: Segment, changes: dict, user=None, client=None) -> Segment:
    """Change editable fields of a definition (audited with the changed field names).

    A retired segment cannot be edited. An approved or active definition stays approved; a
    tool (client without user) may edit only drafts. Unknown fields are an error.
    ``control_group_share`` is fixed once a holdout salt has been drawn (``share_fixed``;
    repeating the current value is not a change).
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise SegmentGovernanceError(
            f"not editable: {', '.join(unknown)}", code="not_editable", field=unknown[0]
        )
    if segment.status == Status.RETIRED:
        raise SegmentGovernanceError("a retired segment cannot be changed", code="retired")
    if user is None and segment.status != Status.DRAFT:
        raise SegmentGovernanceError(
            "only a staff user may change a segment past draft", code="forbidden"
        )
    if user is not None and not user.has_perm("segments.change_segment"):
        raise SegmentGovernanceError("you may not change segments", code="forbidden")
    changed = []
    with transaction.atomic(using=CONTROL):
        locked = Segment.objects.select_for_update().get(pk=segment.pk)
        for field, value in changes.items():
            value = field_clean(field, value)
            current = getattr(locked, field)
            if field == "control_group_share" and locked.holdout_salt and current != value:
                raise SegmentGovernanceError(SHARE_FIXED, code="share_fixed", field=field)
            if field == "owner":
                current_id = locked.owner_id
                new_id = value.pk if value is not None else None
                if current_id != new_id:
                    changed.append(field)
                    locked.owner = value
                continue
            if current != value:
                changed.append(field)
                setattr(locked, field, value)
        if changed:
            locked.save(using=CONTROL)
            _audit(
                segment=locked,
                code=AuditCode.SEGMENT_CHANGED,
                actor=caller_actor(user=user, client=client),
                frm=locked.status,
                to=locked.status,
                fields=changed,
            )
    return locked


def _transition(
    *, segment: Segment, to: str, actor: Actor, extra: dict | None = None, check=None
) -> Segment:
    with transaction.atomic(using=CONTROL):
        locked = Segment.objects.select_for_update().get(pk=segment.pk)
        frm = locked.status
        if to not in TRANSITIONS[frm]:
            raise SegmentGovernanceError(
                f"illegal transition {frm} -> {to}", code="illegal_transition", field="status"
            )
        if check is not None:
            extra = {**(extra or {}), **(check(locked) or {})}
        locked.status = to
        for field, value in (extra or {}).items():
            setattr(locked, field, value)
        locked.save(using=CONTROL)
        _audit(
            segment=locked,
            code=AuditCode.SEGMENT_STATUS_CHANGED,
            actor=actor,
            frm=frm,
            to=to,
            fields=["status", *(extra or {})],
            extra={"holdout_salt": extra["holdout_salt"]}
            if "holdout_salt" in (extra or {})
            else None,
        )
    return locked


def _require_perm(user, codename: str, what: str) -> None:
    if user is None:
        raise SegmentGovernanceError(
            f"{what} needs a staff user (tools can propose, never {what})", code="forbidden"
        )
    if not (user.is_active and user.is_staff and user.has_perm(f"segments.{codename}")):
        raise SegmentGovernanceError(f"you may not {what} segments", code="forbidden")


def _same_proposer(segment: Segment, *, user, client) -> bool:
    if segment.proposed_by_id is not None and segment.proposed_by_id == user.pk:
        return True
    return (
        client is not None
        and segment.proposed_by_client_id is not None
        and segment.proposed_by_client_id == client.pk
    )


def segment_approve(*, segment: Segment, user, client=None) -> Segment:
    """draft -> approved by ``user`` (needs approve_segment; not the proposer if ai_suggested)."""
    _require_perm(user, "approve_segment", "approve")

    def check(locked: Segment) -> None:
        if locked.origin == Origin.AI_SUGGESTED and _same_proposer(
            locked, user=user, client=client
        ):
            raise SegmentGovernanceError(
                "an AI-suggested segment must be approved by someone other than its proposer",
                code="own_suggestion",
            )

    return _transition(
        segment=segment,
        to=Status.APPROVED,
        actor=Actor.user(user),
        extra={"approved_by": user, "approved_at": timezone.now()},
        check=check,
    )


def activation_problems(segment: Segment) -> dict[str, str]:
    """What keeps ``segment`` from activation, by field (empty when it may be activated)."""
    problems = {}
    if segment.owner_id is None:
        problems["owner"] = "an owner is required"
    if not segment.motion:
        problems["motion"] = "a motion is required"
    if not segment.measurement_metric:
        problems["measurement_metric"] = "a measurement plan needs a metric"
    if segment.control_group_share is None:
        problems["control_group_share"] = "a measurement plan needs a control group share"
    if segment.approved_at is None:
        problems["status"] = "the segment was never approved"
    return problems


def segment_activate(*, segment: Segment, user, client=None) -> Segment:
    """approved|paused -> active (needs activate_segment, owner, motion, measurement plan).
    The first activation draws the holdout salt (kept for good: arms never change while it
    stands), stored on the segment and written into the audit entry."""
    _require_perm(user, "activate_segment", "activate")

    def check(locked: Segment) -> dict:
        problems = activation_problems(locked)
        if problems:
            field = next(iter(problems))
            raise SegmentGovernanceError(
                "cannot activate: " + "; ".join(problems.values()),
                code="incomplete",
                field=field,
            )
        return {} if locked.holdout_salt else {"holdout_salt": holdout_salt_new()}

    return _transition(segment=segment, to=Status.ACTIVE, actor=Actor.user(user), check=check)


def segment_pause(*, segment: Segment, user, client=None) -> Segment:
    """active -> paused (needs activate_segment). Paused segments accept exits, not enters."""
    _require_perm(user, "activate_segment", "pause")
    return _transition(segment=segment, to=Status.PAUSED, actor=Actor.user(user))


def segment_retire(*, segment: Segment, user, client=None) -> Segment:
    """any but retired -> retired (needs activate_segment)."""
    _require_perm(user, "activate_segment", "retire")
    return _transition(segment=segment, to=Status.RETIRED, actor=Actor.user(user))


def segments_pause_overdue(*, now=None) -> list[str]:
    """Pause every active segment past its review date (system actor, audited); their keys."""
    paused = []
    for segment in segments_review_overdue(now=now, statuses=[Status.ACTIVE]):
        _transition(segment=segment, to=Status.PAUSED, actor=Actor.system("review_overdue"))
        paused.append(segment.key)
    return paused
