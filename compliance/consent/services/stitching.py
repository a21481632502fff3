"""Stitching: several identifiers of one person end up on one subject.

* ``subject_resolve_many(identifiers=, jurisdiction=, actor=)``: a call carrying several
  identifiers (e.g. an anonymous id and an e-mail) resolves them to ONE subject: unknown
  identifiers are linked to the subject the others name; when they name two or more subjects,
  those are merged into the oldest (the survivor).
* ``subjects_locate`` (the control database: nothing written) then
  ``subject_resolve_located`` (the region), for a caller that opens the region's transaction
  around the second and its own writes.
* ``subjects_merge(survivor=, merged=, actor=)`` (``merging``, re-exported here): identities
  move to the survivor, the ledger is copied, a merge never turns a withdrawal, denial,
  objection or opt-out into a grant; see ``compliance.consent.services.merging``.
* Cross-region merges are refused (``CrossRegionMergeError``): a subject's region is fixed when
  first seen, and moving an EU person's data to another region is not something stitching may
  decide. Nothing is written in that case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from compliance.audit.services.append import Actor
from compliance.consent.services.merging import CrossRegionMergeError, MergeResult, subjects_merge
from compliance.identifiers import Identifier, identifier_normalize
from compliance.models import Identity, Subject, SubjectDirectory
from compliance.regions import region_alias, region_for_country
from compliance.selectors.rows import directory_entries, subject_row
from compliance.services.subjects import (
    SubjectSuppressedError,
    identifier_blind_index,
    identity_attach,
    subject_create,
)
from compliance.services.suppressions import suppressed_unlisted

# the merge's names stay importable from here, where callers have always found them
__all__ = [
    "CrossRegionMergeError",
    "Located",
    "MergeResult",
    "identity_link",
    "subject_resolve_located",
    "subject_resolve_many",
    "subjects_locate",
    "subjects_merge",
]


@dataclass(frozen=True)
class Located:
    """What the control database says of a call's identifiers (``subjects_locate``)."""

    normalized: list[Identifier]
    indexes: list[str]
    entries: dict[str, SubjectDirectory]
    #: the region of the subjects found, else the jurisdiction's (where one would be created)
    region: str


def subject_resolve_many(
    *, identifiers: Sequence[tuple[str, str]], jurisdiction: str | None, actor: Actor
) -> Subject:
    """Resolve ``[(type, value), ...]`` (first one leads) to one subject; see module docs.

    Raises ``IdentifierError``, ``SubjectSuppressedError`` or ``CrossRegionMergeError`` before
    writing anything.
    """
    located = subjects_locate(identifiers=identifiers, jurisdiction=jurisdiction)
    return subject_resolve_located(located=located, actor=actor)


def subjects_locate(*, identifiers: Sequence[tuple[str, str]], jurisdiction: str | None) -> Located:
    """The control-database half of ``subject_resolve_many`` (one or two queries, nothing written):
    identifiers normalised, suppression checked, directory entries found, region decided.
    A caller can then open the region's transaction around ``subject_resolve_located`` and
    its own writes, so that everything the call writes in the region commits (and is audited)
    together. Raises as ``subject_resolve_many``."""
    normalized = [identifier_normalize(identifier_type=t, value=v) for t, v in identifiers]
    indexes = [identifier_blind_index(identifier=i) for i in normalized]
    entries = directory_entries(blind_indexes=indexes)
    if suppressed_unlisted(blind_indexes=indexes, listed=entries):
        raise SubjectSuppressedError("an identifier was erased and may not be re-ingested")
    regions_found = {e.region for e in entries.values()}
    if len(regions_found) > 1:
        raise CrossRegionMergeError(
            "these identifiers belong to subjects in different regions; cross-region merges "
            "are refused"
        )
    region = regions_found.pop() if regions_found else region_for_country(country=jurisdiction)
    return Located(normalized=normalized, indexes=indexes, entries=entries, region=region)


def subject_resolve_located(*, located: Located, actor: Actor, for_update: bool = False) -> Subject:
    """The regional half of ``subject_resolve_many``: the subjects read, created, merged and
    linked (in the caller's transaction of the region if it has one).

    ``for_update`` (inside the caller's transaction of the region): the subjects are read with
    their row locks, in primary-key order, so the survivor returned is already locked for the
    rest of the transaction (a subject created here is invisible to others until commit)."""
    subjects: list[Subject] = []
    for entry in sorted(located.entries.values(), key=lambda e: str(e.subject_id)):
        alias = region_alias(region=entry.region)
        subject = _live(
            subject_row(alias=alias, subject_id=entry.subject_id, for_update=for_update),
            for_update=for_update,
        )
        if subject is not None and subject.pk not in {s.pk for s in subjects}:
            subjects.append(subject)
    linked = set(located.entries)
    if not subjects:
        first, index = located.normalized[0], located.indexes[0]
        survivor = subject_create(
            identifier=first,
            index=index,
            region=located.region,
            actor=actor,
            entry=located.entries.get(index),
        )
        linked.add(index)
    else:
        subjects.sort(key=lambda s: (s.created_at, str(s.pk)))
        survivor = subjects[0]
        for other in subjects[1:]:
            subjects_merge(survivor=survivor, merged=other, actor=actor)
    for identifier, index in zip(located.normalized, located.indexes, strict=True):
        if index not in linked:
            identity_link(subject=survivor, identifier=identifier, blind_index=index, actor=actor)
    return survivor


def _live(subject: Subject | None, *, for_update: bool) -> Subject | None:
    """Follow ``merged_into`` to the surviving subject (locking each hop if ``for_update``)."""
    seen = set()
    while subject is not None and subject.merged_into and subject.pk not in seen:
        seen.add(subject.pk)
        subject = subject_row(
            alias=subject.region, subject_id=subject.merged_into, for_update=for_update
        )
    return subject


def identity_link(
    *, subject: Subject, identifier: Identifier, blind_index: str, actor: Actor
) -> Identity:
    """Add an identifier to ``subject``: directory row (control) and identity (region)."""
    try:
        with transaction.atomic(using="default"):
            SubjectDirectory.objects.create(
                blind_index=blind_index,
                identifier_type=identifier.type,
                region=subject.region,
                subject_id=subject.pk,
            )
    except IntegrityError:
        pass  # linked concurrently; the identity below is idempotent
    return identity_attach(
        subject=subject, identifier=identifier, blind_index=blind_index, actor=actor
    )
