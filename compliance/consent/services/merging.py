"""Merging two subjects found to be one person (``subjects_merge``; stitching decides when).

* Identities move to the survivor and are re-encrypted under its data key; consent events are
  copied to the survivor (the ledger is append-only, so the originals stay on the merged subject
  as history; copies carry method ``merge`` and ``copied_from``); the survivor's state is
  rebuilt from its ledger; ``merged.merged_into`` is set; the directory points the identifiers
  at the survivor; ``SUBJECTS_MERGED`` is audited.
* A merge never turns a withdrawal, denial, objection or opt-out into a grant: where either
  side's latest decision for a purpose and scope was one of those and the merged ledger would
  end on a grant, the negative decision is restated on the survivor (method ``merge``, audited
  like any withdrawal), and ``consent_basis_lost`` runs for every purpose either side was
  allowed and the survivor no longer is (the segments handler also closes the merged
  subject's stays: its consent is the survivor's from now on); then ``subject_merged`` closes
  the merged subject's remaining stays (reason ``merged``): the person goes on as the survivor,
  in the survivor's holdout arm.

Data of other apps keyed by the merged subject (events, memberships) stays where it is; the
merged subject keeps its data key so it remains readable and erasable.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from compliance import crypto, hooks
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import ConsentEvent, ConsentState, Decision, Method, Scope
from compliance.consent.selectors.evaluation import can_process_bulk
from compliance.consent.selectors.history import history_records
from compliance.consent.services.projection import state_apply
from compliance.consent.services.record import audit_code, audit_payload
from compliance.errors import ConflictError
from compliance.feed.services.outbox import consent_changes_record
from compliance.models import Identity, Subject, SubjectDirectory
from compliance.regions import region_alias
from compliance.services.subjects import identity_value, subject_data_key

#: decisions a merge must never turn into a grant
PROTECTED = frozenset({Decision.WITHDRAWN, Decision.DENIED, Decision.OBJECTED, Decision.OPTED_OUT})


class CrossRegionMergeError(ConflictError):
    """Two subjects of different regions were found to be one person; refused."""

    code, field = "cross_region_merge", "identifiers"


@dataclass(frozen=True)
class MergeResult:
    survivor_id: object
    merged_id: object
    identities_moved: int
    events_copied: int
    negatives_restated: int


def subjects_merge(*, survivor: Subject, merged: Subject, actor: Actor) -> MergeResult:
    """Merge ``merged`` into ``survivor`` (same region only); see module docs."""
    if survivor.region != merged.region:
        raise CrossRegionMergeError(
            f"cannot merge a subject of region {merged.region} into one of {survivor.region}"
        )
    if survivor.pk == merged.pk:
        raise ValueError("a subject cannot be merged into itself")
    alias = region_alias(region=survivor.region)
    survivor_key = subject_data_key(subject=survivor)
    now = timezone.now()
    with transaction.atomic(using=alias):
        survivor, merged = _lock_pair(alias=alias, survivor=survivor, merged=merged)
        if merged.merged_into == survivor.pk:
            return MergeResult(survivor.pk, merged.pk, 0, 0, 0)
        moved = _identities_move(alias=alias, survivor=survivor, merged=merged, key=survivor_key)
        # either side's basis counts: what the merged subject was allowed and the survivor no
        # longer is must end too (its segment stays follow the survivor's consent from now on)
        purposes = _all_purposes(alias=alias, subject_ids=[survivor.pk, merged.pk])
        allowed_before = _allowed(survivor, purposes) | _allowed(merged, purposes)
        latest = _latest(alias=alias, subject_ids=[survivor.pk, merged.pk])
        copies = _ledger_copy(alias=alias, survivor=survivor, merged=merged, now=now)
        restated = _negatives_restate(
            alias=alias, survivor=survivor, merged=merged, before=latest, actor=actor, now=now
        )
        _state_replay(alias=alias, subject_id=survivor.pk)
        Subject.objects.using(alias).filter(merged_into=merged.pk).update(merged_into=survivor.pk)
        Subject.objects.using(alias).filter(pk=merged.pk).update(merged_into=survivor.pk)
        _merge_audit(
            alias=alias, survivor=survivor, merged=merged, actor=actor, moved=moved,
            copied=len(copies), restated=restated,
        )  # fmt: skip
        # the change feed: the survivor's copied and restated decisions, same transaction
        consent_changes_record(using=alias, events=[*copies, *restated])
        lost = sorted(allowed_before - _allowed(survivor, purposes))
        if lost:
            hooks.consent_basis_lost(
                region=survivor.region,
                subject_id=survivor.pk,
                purposes=lost,
                reason="consent_withdrawn",
                actor=actor,
            )
        # what is left of the merged subject's stays ends too: the person goes on as the
        # survivor, in the survivor's holdout arm (after the consent exits, which retract)
        hooks.subject_merged(
            region=survivor.region, survivor_id=survivor.pk, merged_id=merged.pk, actor=actor
        )
    # the control directory follows once the region committed (lookups follow merged_into
    # meanwhile, so a failure here is harmless and repaired by the next merge or lookup)
    SubjectDirectory.objects.filter(subject_id=merged.pk).update(subject_id=survivor.pk)
    return MergeResult(survivor.pk, merged.pk, moved, len(copies), len(restated))


def _lock_pair(*, alias: str, survivor: Subject, merged: Subject) -> tuple[Subject, Subject]:
    """Both subjects, locked in id order (like memberships_apply's locks: no deadlock) and
    re-read; refuses a merge from or into an already merged subject (unless it is this one)."""
    locked = {
        s.pk: s
        for s in Subject.objects.using(alias)
        .select_for_update()
        .filter(pk__in=[survivor.pk, merged.pk])
        .order_by("pk")
    }
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if merged.merged_into != survivor.pk and (survivor.merged_into or merged.merged_into):
        raise ValueError("merge into the surviving subject, not a merged one")
    return survivor, merged


def _identities_move(*, alias: str, survivor: Subject, merged: Subject, key: bytes) -> int:
    """Move the merged subject's identities to the survivor, re-encrypted under its ``key``."""
    moved = 0
    for identity in Identity.objects.using(alias).filter(subject_id=merged.pk):
        value = identity_value(identity=identity, subject=merged)
        ciphertext = crypto.encrypt(
            data_key=key,
            plaintext=value.encode(),
            aad=f"identity:{survivor.pk}:{identity.identifier_type}".encode(),
        )
        Identity.objects.using(alias).filter(pk=identity.pk).update(
            subject_id=survivor.pk, value_encrypted=ciphertext
        )
        moved += 1
    return moved


def _latest(*, alias: str, subject_ids: list) -> dict:
    """The latest event per (subject, purpose, scope) of each side, before the merge."""
    return history_records(
        alias=alias, subject_ids=subject_ids, purposes=None, scopes=None, at=None
    )


def _ledger_copy(*, alias: str, survivor: Subject, merged: Subject, now) -> list[ConsentEvent]:
    """Copy the merged ledger to the survivor (method ``merge``, ``copied_from`` the original;
    the originals stay: the ledger is append-only)."""
    copies = [
        ConsentEvent(
            subject_id=survivor.pk,
            purpose=e.purpose,
            purpose_version=e.purpose_version,
            source=e.source,
            scope=e.scope,
            jurisdiction=e.jurisdiction,
            lawful_basis=e.lawful_basis,
            decision=e.decision,
            method=Method.MERGE,
            captured_at=e.captured_at,
            received_at=now,
            expires_at=e.expires_at,
            notice_version_id=e.notice_version_id,
            collection_point=e.collection_point,
            actor_type=e.actor_type,
            actor_id=e.actor_id,
            raw_signal=e.raw_signal,
            decoder_version=e.decoder_version,
            copied_from=e.pk,
        )
        for e in ConsentEvent.objects.using(alias).filter(subject_id=merged.pk).order_by("id")
    ]
    ConsentEvent.objects.using(alias).bulk_create(copies, batch_size=1000)
    return copies


def _negatives_restate(
    *, alias: str, survivor: Subject, merged: Subject, before: dict, actor: Actor, now
) -> list[ConsentEvent]:
    """Never turn a withdrawal or denial into a grant: where the merged ledger ends on a grant
    but either side's latest ``before`` the merge was protected, restate the later of those."""
    combined = _latest(alias=alias, subject_ids=[survivor.pk])
    restated = []
    for (_, purpose, scope_key), record in combined.items():
        if record.decision != Decision.GRANTED:
            continue
        negatives = [
            r
            for r in (before.get((sid, purpose, scope_key)) for sid in (survivor.pk, merged.pk))
            if r is not None and r.decision in PROTECTED
        ]
        if not negatives:
            continue
        negative = max(negatives, key=lambda r: r.order_key())
        original = ConsentEvent.objects.using(alias).get(pk=negative.event_id)
        restated.append(
            ConsentEvent.objects.using(alias).create(
                subject_id=survivor.pk,
                purpose=purpose,
                purpose_version=original.purpose_version,
                source=original.source,
                scope=Scope.SOURCE if scope_key else Scope.GLOBAL,
                jurisdiction=original.jurisdiction,
                lawful_basis=original.lawful_basis,
                decision=original.decision,
                method=Method.MERGE,
                captured_at=now,
                received_at=now,
                collection_point=original.collection_point,
                actor_type=actor.kind,
                actor_id=actor.id,
                copied_from=original.pk,
            )
        )
    return restated


def _state_replay(*, alias: str, subject_id) -> None:
    """The subject's state, rebuilt from its ledger."""
    ConsentState.objects.using(alias).filter(subject_id=subject_id).delete()
    state_apply(
        using=alias, events=list(ConsentEvent.objects.using(alias).filter(subject_id=subject_id))
    )


def _merge_audit(
    *,
    alias: str,
    survivor: Subject,
    merged: Subject,
    actor: Actor,
    moved: int,
    copied: int,
    restated: list[ConsentEvent],
) -> None:
    """``SUBJECTS_MERGED`` and one consent entry per restated negative decision."""
    audit_append(
        using=alias,
        entries=[
            AuditEntry(
                code=AuditCode.SUBJECTS_MERGED,
                actor=actor,
                subject_token=survivor.audit_token,
                object_type="subject",
                payload={
                    "merged_subject_token": merged.audit_token,
                    "identities_moved": moved,
                    "consent_events_copied": copied,
                    "negatives_restated": len(restated),
                },
            ),
            *(
                AuditEntry(
                    code=audit_code(decision=e.decision, method=e.method),
                    actor=actor,
                    subject_token=survivor.audit_token,
                    object_type="consent_event",
                    object_id=str(e.pk),
                    payload=audit_payload(event=e),
                )
                for e in restated
            ),
        ],
    )


def _all_purposes(*, alias: str, subject_ids: list) -> list[str]:
    return sorted(
        set(
            ConsentEvent.objects.using(alias)
            .filter(subject_id__in=subject_ids)
            .values_list("purpose", flat=True)
        )
    )


def _allowed(subject: Subject, purposes: list[str]) -> set[str]:
    if not purposes:
        return set()
    result = can_process_bulk(region=subject.region, subject_ids=[subject.pk], purposes=purposes)
    return {p for (_, p), d in result.items() if d.allowed}
