"""The control database's suppression mirror (``SuppressedIdentifier``): is an identifier erased?

Every region keeps its own ``Suppression`` rows (the erasure's regional proof, with the request
that erased each identifier); the control database keeps a copy of their blind indexes and
regions, so re-ingestion is refused with ONE query on ``default`` and no region is asked. The
writers of regional rows write the copy too (the erasure's ``suppression`` and ``directory``
steps, the backup replay); ``suppressions_mirror_backfill`` copies a region's existing rows
(migration ``compliance.0005``, ``manage.py suppressions_mirror``, ``replay_erasures``).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

from django.apps import apps as global_apps

from compliance.models import SuppressedIdentifier
from compliance.regions import region_alias

#: rows copied per statement by the backfill
BACKFILL_CHUNK = 2000


def suppressed_regions(*, blind_indexes: Sequence[str]) -> dict[str, str]:
    """Blind index -> region that erased it, for the erased ones among ``blind_indexes``
    (ONE query on the control database; none for an empty list)."""
    if not blind_indexes:
        return {}
    rows = SuppressedIdentifier.objects.using("default").filter(
        blind_index__in=sorted(set(blind_indexes))
    )
    return dict(rows.values_list("blind_index", "region"))


def suppressed_unlisted(*, blind_indexes: Sequence[str], listed: Container[str]) -> dict[str, str]:
    """``suppressed_regions`` for the indexes the control directory does not hold (``listed``
    holds those it does): an erasure moves an index from the directory to the mirror in one
    control transaction, so a listed index is never suppressed. No query when all are
    listed."""
    return suppressed_regions(blind_indexes=[i for i in blind_indexes if i not in listed])


def suppressions_mirror_add(*, region: str, blind_indexes: Iterable[str]) -> None:
    """Add ``blind_indexes`` (erased in ``region``) to the mirror; those already there are
    kept as they are. One statement (per 300 rows on SQLite); the caller's transaction on
    ``default`` if it holds one."""
    indexes = sorted(set(blind_indexes))
    if indexes:
        SuppressedIdentifier.objects.using("default").bulk_create(
            [SuppressedIdentifier(blind_index=index, region=region) for index in indexes],
            ignore_conflicts=True,
            batch_size=300,
        )


def suppressions_mirror_backfill(
    *, region: str, apps=None, chunk: int = BACKFILL_CHUNK, source: str | None = None
) -> int:
    """Copy every ``Suppression`` row of ``region`` (database ``source``, by default the
    region's alias) into the mirror, ``chunk`` rows per statement, in id order; idempotent.
    ``apps``: a migration's historical registry. Returns the rows read."""
    registry = apps or global_apps
    suppression = registry.get_model("compliance", "Suppression")
    mirror = registry.get_model("compliance", "SuppressedIdentifier")
    alias = source or region_alias(region=region)
    last, read = 0, 0
    while True:
        rows = list(
            suppression.objects.using(alias)
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "blind_index")[:chunk]
        )
        if not rows:
            return read
        mirror.objects.using("default").bulk_create(
            [mirror(blind_index=index, region=region) for _, index in rows],
            ignore_conflicts=True,
            batch_size=300,
        )
        last, read = rows[-1][0], read + len(rows)
