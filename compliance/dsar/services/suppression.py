"""Suppression of erased identifiers (blind indexes only), a step of the erasure engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from django.utils import timezone

from compliance.dsar.sql import suppressions_insert
from compliance.models import Identity, Suppression
from compliance.services.suppressions import suppressions_mirror_add


def suppressions_add(
    *, alias: str, region: str, subject_ids: Sequence[UUID], request_of: Mapping[UUID, UUID]
) -> list[tuple[str, UUID]]:
    """Add the blind index of every identity of ``subject_ids`` to the region's suppression
    list, in the caller's transaction, and to the control database's mirror (one statement
    each; the mirror gets every identity's index, also those the region had already);
    ``request_of`` maps a subject to the erasure request that suppresses it. Indexes already
    suppressed are skipped. Returns ``(identifier type, subject id)`` of each new regional
    row, for the caller's SUPPRESSION_ADDED audit entries."""
    owners = {sid: request_of[sid] for sid in subject_ids}
    rows = suppressions_insert(using=alias, owners=owners, at=timezone.now())
    if rows is None:  # the ORM where the database has no one-statement form
        rows = _suppressions_insert_orm(alias=alias, request_of=owners)
    suppressions_mirror_add(region=region, blind_indexes=[index for _, _, index, _ in rows])
    return [(kind, subject_id) for kind, subject_id, _, added in rows if added]


def _suppressions_insert_orm(
    *, alias: str, request_of: Mapping[UUID, UUID]
) -> list[tuple[str, UUID, str, bool]]:
    """``suppressions_insert`` with the ORM (SQLite): a read, a read and one insert."""
    identities = list(
        Identity.objects.using(alias)
        .filter(subject_id__in=list(request_of))
        .order_by("id")
        .values_list("identifier_type", "subject_id", "blind_index")
    )
    known = set(
        Suppression.objects.using(alias)
        .filter(blind_index__in=[index for _, _, index in identities])
        .values_list("blind_index", flat=True)
    )
    new = [row for row in identities if row[2] not in known]
    Suppression.objects.using(alias).bulk_create(
        [
            Suppression(
                blind_index=index,
                identifier_type=kind,
                reason="erasure",
                request_id=request_of[subject_id],
            )
            for kind, subject_id, index in new
        ],
        ignore_conflicts=True,
    )
    return [(kind, sid, index, index not in known) for kind, sid, index in identities]
