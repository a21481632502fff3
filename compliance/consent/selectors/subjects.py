"""Reads about subjects for the consent API: find by id, state, history, Consent Mode."""

from __future__ import annotations

from uuid import UUID

from django.db import connections

from compliance.consent.models import CONSENT_MODE_TYPES, ConsentEvent, ConsentState
from compliance.consent.rules import Verdict
from compliance.consent.selectors.config import purposes_by_key
from compliance.consent.selectors.evaluation import can_process_bulk, state_rows_of
from compliance.models import Subject
from compliance.regions import region_alias, regions
from compliance.selectors.rows import columns, subject_row

_STATES_SQL = (
    f"SELECT {columns(ConsentState)} FROM {ConsentState._meta.db_table} "
    "WHERE subject_id = %s ORDER BY purpose, source"
)
#: Consent Mode types no purpose maps to: strictly necessary ones are granted, others denied
NECESSARY_TYPES = frozenset({"security_storage"})


def subject_find(*, subject_id: UUID) -> Subject | None:
    """The subject with this id in whichever region holds it (one query per region).

    The control database knows subjects only by blind index, so each region is asked."""
    for region in regions():
        subject = Subject.objects.using(region_alias(region=region)).filter(pk=subject_id).first()
        if subject is not None:
            return subject
    return None


def subject_survivor(*, subject: Subject) -> Subject:
    """The subject itself, or the one it was merged into."""
    seen = set()
    while subject.merged_into and subject.pk not in seen:
        seen.add(subject.pk)
        nxt = subject_row(alias=subject.region, subject_id=subject.merged_into)
        if nxt is None:
            break
        subject = nxt
    return subject


def consent_history(*, subject: Subject) -> list[ConsentEvent]:
    return list(
        ConsentEvent.objects.using(subject.region)
        .filter(subject_id=subject.pk)
        .order_by("captured_at", "id")
    )


def consent_state_rows(*, subject: Subject) -> list[ConsentState]:
    """``subject``'s consent state rows, by purpose and source (a raw query: every look-up reads
    them, see ``compliance.selectors.rows``)."""
    key = ConsentState._meta.get_field("subject_id").get_db_prep_value(
        subject.pk, connections[subject.region]
    )
    return list(ConsentState.objects.using(subject.region).raw(_STATES_SQL, [key]))


def consent_evaluation(
    *,
    subject: Subject,
    source: str | None = None,
    jurisdiction: str | None = None,
    states: list[ConsentState] | None = None,
) -> dict[str, Verdict]:
    """``can_process`` for every active purpose, by purpose key; ``states``: the subject's
    ``consent_state_rows``, when the caller read them just now (no second read)."""
    keys = sorted(purposes_by_key())
    result = can_process_bulk(
        region=subject.region,
        subject_ids=[subject.pk],
        purposes=keys,
        source=source,
        jurisdiction=jurisdiction,
        survivors=not subject.merged_into,
        states=None if states is None else state_rows_of(states),
    )
    return {key: result[(subject.pk, key)] for key in keys}


def consent_mode(
    *, subject: Subject, source: str | None = None, jurisdiction: str | None = None
) -> dict[str, str]:
    """Google Consent Mode v2: each of the seven types ``granted`` or ``denied``.

    A type is granted when every active purpose mapped to it (``Purpose.consent_mode_types``)
    is allowed now; a type no purpose maps to is granted only if strictly necessary
    (``security_storage``)."""
    purposes = purposes_by_key()
    decisions = consent_evaluation(subject=subject, source=source, jurisdiction=jurisdiction)
    out = {}
    for mode_type in CONSENT_MODE_TYPES:
        mapped = [k for k, p in purposes.items() if mode_type in p.consent_mode_types]
        if not mapped:
            granted = mode_type in NECESSARY_TYPES
        else:
            granted = all(decisions[k].allowed for k in mapped)
        out[mode_type] = "granted" if granted else "denied"
    return out
