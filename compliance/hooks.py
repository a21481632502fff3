"""Explicit, synchronous hooks between apps (no Django signals for business flow).

``consent_basis_lost``: called by the consent service *inside* the region transaction that
recorded a withdrawal, denial, objection, expiry or opt-out, with the purposes that lost their
basis. Handlers (the segments app registers one) act in the same transaction, so the consent
change and its consequences commit or roll back together.

``subject_merged``: called by ``subjects_merge`` inside its region transaction; the segments
app closes the merged subject's open stays there (the person goes on as the survivor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

ConsentLossHandler = Callable[..., object]
_CONSENT_LOSS_HANDLERS: list[ConsentLossHandler] = []


def on_consent_basis_lost(handler: ConsentLossHandler) -> ConsentLossHandler:
    """Register ``handler(*, region, subject_id, purposes, reason, actor)`` (idempotent)."""
    if handler not in _CONSENT_LOSS_HANDLERS:
        _CONSENT_LOSS_HANDLERS.append(handler)
    return handler


def consent_basis_lost(
    *, region: str, subject_id: UUID, purposes: Sequence[str], reason: str, actor
) -> None:
    """Run every handler; call inside ``transaction.atomic(using=region)``."""
    for handler in _CONSENT_LOSS_HANDLERS:
        handler(
            region=region,
            subject_id=subject_id,
            purposes=list(purposes),
            reason=reason,
            actor=actor,
        )


SubjectMergeHandler = Callable[..., object]
_MERGE_HANDLERS: list[SubjectMergeHandler] = []


def on_subject_merged(handler: SubjectMergeHandler) -> SubjectMergeHandler:
    """Register ``handler(*, region, survivor_id, merged_id, actor)`` (idempotent)."""
    if handler not in _MERGE_HANDLERS:
        _MERGE_HANDLERS.append(handler)
    return handler


def subject_merged(*, region: str, survivor_id: UUID, merged_id: UUID, actor) -> None:
    """Run every handler; called by ``subjects_merge`` inside its region transaction, once the
    merge and its consent consequences are written."""
    for handler in _MERGE_HANDLERS:
        handler(region=region, survivor_id=survivor_id, merged_id=merged_id, actor=actor)


# --- enter blockers: reasons a subject may not enter any segment (e.g. a DSAR restriction) ---
EnterBlocker = Callable[..., dict]
_ENTER_BLOCKERS: list[EnterBlocker] = []


def register_enter_blocker(blocker: EnterBlocker) -> EnterBlocker:
    """Register ``blocker(*, region, subject_ids) -> {subject_id: reason}`` (idempotent)."""
    if blocker not in _ENTER_BLOCKERS:
        _ENTER_BLOCKERS.append(blocker)
    return blocker


def enter_blocked(*, region: str, subject_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Subjects that may not enter segments now, with the reason (one query per blocker)."""
    blocked: dict[UUID, str] = {}
    for blocker in _ENTER_BLOCKERS:
        for subject_id, reason in blocker(region=region, subject_ids=subject_ids).items():
            blocked.setdefault(subject_id, reason)
    return blocked
