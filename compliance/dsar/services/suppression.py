"""Suppression of erased identifiers (blind indexes only), a step of the erasure engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from django.utils import timezone

from compliance.dsar.sql import suppressions_insert
from compliance.models import Identity, Suppression


def suppressions_add(
    *, alias: str, subject_ids: Sequence[UUID], request_of: Mapping[UUID, UUID]
) -> list[tuple[str, UUID]]:
    """Add the blind index of every identity of ``subject_ids`` to the suppression list, in the
    caller's transaction; ``request_of`` maps a subject to the erasure request that suppresses
    it. Indexes already suppressed are skipped. Returns ``(identifier type, subject id)`` of
    each new row, for the caller's SUPPRESSION_ADDED audit entries."""
    owners = {sid: request_of[sid] for sid in subject_ids}
    added = suppressions_insert(using=alias, owners=owners, at=timezone.now())
    if added is not None:  # one statement where the database allows it
        return added
    identities = list(
        Identity.objects.using(alias)
        .filter(subject_id__in=list(subject_ids))
        .order_by("id")
        .values_list("blind_index", "identifier_type", "subject_id")
    )
    known = set(
        Suppression.objects.using(alias)
        .filter(blind_index__in=[index for index, _, _ in identities])
        .values_list("blind_index", flat=True)
    )
    new = [row for row in identities if row[0] not in known]
    Suppression.objects.using(alias).bulk_create(
        [
            Suppression(
                blind_index=index,
                identifier_type=kind,
                reason="erasure",
                request_id=request_of[subject_id],
            )
            for index, kind, subject_id in new
        ],
        ignore_conflicts=True,
    )
    return [(kind, subject_id) for _, kind, subject_id in new]
