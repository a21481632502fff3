"""May we process a subject's data for a purpose? Allowed or not, on what basis, proven by what.

Contract (relied on by segments and events):

* ``can_process(subject=, purpose=, source=None, jurisdiction=None, at=None) -> Decision``
* ``can_process_bulk(region=, subject_ids=, purposes=, source=None, jurisdiction=None, at=None)``
  answers ``{(subject_id, purpose): Decision}`` with a constant number of queries (one for the
  purposes, one for merged subjects, one for the state projection, and one more for history only
  when ``at`` lies before some state row); on SQLite the id list is chunked to stay under its
  variable limit. A merged subject is answered with its survivor's consent, as by
  ``can_process``.

Rules, in order (each has a test in ``tests/consent/test_evaluation.py``):

1. Unknown or inactive purpose: not allowed (``unknown_purpose``).
2. The deciding record: the latest global-scope record, and, when ``source`` is given, the
   latest record scoped to that source. The source-scoped record beats the global one, except
   that a *later* global negative decision (withdrawn, denied, objected, opted out, expired,
   invalid signal) beats any grant; a later global grant replaces a source record that lapsed
   (expired).
3. Which basis applies: if the purpose allows consent and the jurisdiction is one where consent
   is required (or the jurisdiction is unknown: fail closed), only a live grant allows it. If
   consent is not required there, the purpose's other basis applies: ``us_opt_out`` (US
   jurisdictions only) or legitimate interests/public task are allowed unless the latest record
   is negative (objected, opted out, withdrawn, denied); contract, legal obligation and vital
   interests are allowed whatever was recorded. A live grant is always reported as basis
   ``consent``.
4. Consent model, fail closed: no record (``no_record``), a grant past ``expires_at``
   (``expired``), a signal that failed validation (``unreadable_signal``) or any negative
   decision (the decision is the reason) means not allowed.

``jurisdiction`` defaults to the jurisdiction of the latest record for the subject and purpose;
when there is none either, consent is required (fail closed). ``at`` defaults to now; a past
``at`` evaluates the history as it stood then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import psycopg
from django.db import connections
from django.utils import timezone

from compliance.consent.models import NEGATIVE_DECISIONS, ConsentEvent, ConsentState
from compliance.consent.models import Decision as Choice
from compliance.consent.models import Purpose as PurposeModel
from compliance.consent.selectors.config import jurisdiction_matches, purposes_by_key
from compliance.regions import country_of, region_alias

#: non-consent bases stopped by an objection (Art. 21) and the order they are preferred in
_OBJECTABLE = ("legitimate_interests", "public_task")
_UNCONDITIONAL = ("contract", "legal_obligation", "vital_interests")
_BLOCKS_ALTERNATIVE = frozenset(
    {Choice.OBJECTED, Choice.OPTED_OUT, Choice.WITHDRAWN, Choice.DENIED}
)
_SQLITE_CHUNK = 5000


@dataclass(frozen=True)
class Decision:
    """The answer: ``event_ids`` are the deciding consent events (may be empty)."""

    allowed: bool
    basis: str | None
    event_ids: tuple[int, ...]
    reason: str


class Record(NamedTuple):
    """The latest event of one (subject, purpose, scope): a state row or a folded event."""

    event_id: int
    decision: str
    lawful_basis: str
    jurisdiction: str
    captured_at: datetime
    expires_at: datetime | None

    def order_key(self) -> tuple[datetime, int]:
        return (self.captured_at, self.event_id)


class _Rules(NamedTuple):
    has_consent: bool
    consent_required: bool
    alternative: str | None


def _rules(purpose: PurposeModel, jurisdiction: str | None, cache: dict) -> _Rules:
    key = (purpose.key, jurisdiction)
    rules = cache.get(key)
    if rules is None:
        bases = list(purpose.lawful_bases)
        alternative = _alternative_basis(bases=bases, jurisdiction=jurisdiction)
        has_consent = "consent" in bases
        consent_required = has_consent and (
            jurisdiction is None
            or alternative is None
            or jurisdiction_matches(jurisdiction=jurisdiction, codes=purpose.consent_required_in)
        )
        rules = cache[key] = _Rules(has_consent, consent_required, alternative)
    return rules


def can_process(
    *,
    subject,
    purpose: str,
    source: str | None = None,
    jurisdiction: str | None = None,
    at: datetime | None = None,
) -> Decision:
    """One subject (a ``Subject``; a merged subject is evaluated as its survivor)."""
    subject_id = subject.merged_into or subject.pk
    result = can_process_bulk(
        region=subject.region,
        subject_ids=[subject_id],
        purposes=[purpose],
        source=source,
        jurisdiction=jurisdiction,
        at=at,
    )
    return result[(subject_id, purpose)]


def can_process_bulk(
    *,
    region: str,
    subject_ids: Sequence[UUID],
    purposes: Sequence[str],
    source: str | None = None,
    jurisdiction: str | None = None,
    at: datetime | None = None,
) -> dict[tuple[UUID, str], Decision]:
    """Decisions for every (subject, purpose) pair; constant number of queries."""
    alias = region_alias(region=region)
    at = at or timezone.now()
    at_ts = at.timestamp()
    ids = [s if isinstance(s, UUID) else UUID(str(s)) for s in subject_ids]
    purpose_keys = list(dict.fromkeys(purposes))
    config = purposes_by_key(keys=purpose_keys)
    known = [k for k in purpose_keys if k in config]
    # a merged subject is evaluated as its survivor (like ``can_process``); answers stay keyed
    # by the ids asked for
    survivors = _survivors(alias=alias, subject_ids=ids)
    numbers = [survivors.get(s, s).int for s in ids] if survivors else [s.int for s in ids]
    wanted = list(dict.fromkeys([*ids, *survivors.values()])) if survivors else ids
    records = _records(alias=alias, subject_ids=wanted, purposes=known, source=source, at=at)
    out: dict[tuple[UUID, str], Decision] = {}
    cache: dict = {}
    unknown = Decision(False, None, (), "unknown_purpose")
    get = records.get
    for key in purpose_keys:
        purpose = config.get(key)
        if purpose is None:
            for subject_id in ids:
                out[(subject_id, key)] = unknown
            continue
        nothing = None  # the answer for a subject without records is the same for all of them
        # records are keyed by the id's int: UUID.__hash__ is Python code, int's is not
        for subject_id, number in zip(ids, numbers, strict=True):
            global_record = get((number, key, ""))
            source_record = get((number, key, source)) if source else None
            if global_record is None and source_record is None:
                if nothing is None:
                    nothing = _evaluate(purpose, None, None, jurisdiction, at_ts, cache)
                out[(subject_id, key)] = nothing
            else:
                out[(subject_id, key)] = _evaluate(
                    purpose, global_record, source_record, jurisdiction, at_ts, cache
                )
    return out


def consent_gate_positions(
    *,
    region: str,
    subject_ids: Sequence[UUID],
    purposes: Sequence[str],
    at: datetime | None = None,
    id_array: str | None = None,
    merged_excluded: bool = False,
) -> tuple[dict[int, str], list[list[int] | None]]:
    """Which subjects may be processed for EVERY purpose (global scope, no source, jurisdiction
    from the records), by position (0-based indexes into ``subject_ids``): ``(refused, events)``
    where ``refused`` maps a position to the first purpose not allowed and ``events[i]`` is the
    sorted deciding event ids of an allowed subject (``None`` when refused). Bulk callers use it
    to avoid hashing 100,000 UUIDs; ``id_array`` is the ids' PostgreSQL array text when the
    caller already built it (see ``segments.services.memberships.uuid_array``).

    The answers are ``can_process_bulk``'s (``tests/consent/test_gate_differential.py`` checks
    it): a merged subject is answered with its survivor's consent. On PostgreSQL that costs a
    lookup of the merged ones among the ids, which ``merged_excluded=True`` skips: the caller
    guarantees that no id is a merged subject (it refused or filtered them already)."""
    ids = subject_ids
    keys = list(dict.fromkeys(purposes))
    if not ids or not keys:
        return {}, [[] for _ in ids]
    alias = region_alias(region=region)
    if connections[alias].vendor != "postgresql":
        ids = [s if isinstance(s, UUID) else UUID(str(s)) for s in ids]
        decisions = can_process_bulk(region=region, subject_ids=ids, purposes=keys, at=at)
        refused_by, allowed_by = _fold(ids, keys, lambda sid, key: decisions.get((sid, key)))
        return _positions(ids, refused_by, allowed_by)
    at = at or timezone.now()
    at_ts = at.timestamp()
    config = purposes_by_key(keys=keys)
    known = [k for k in keys if k in config]
    allowed_at: dict[str, dict[int, int]] = {k: {} for k in keys}  # position -> event id
    denied_at: dict[str, set[int]] = {k: set() for k in keys}
    # positions answered by the full path: merged subjects (as their survivors) and, below,
    # subjects whose latest state is later than ``at``
    stale: set[int] = (
        set() if merged_excluded else _merged_positions(alias=alias, ids=ids, id_array=id_array)
    )
    cache: dict = {}
    for purpose, decision, jur, live, is_stale, positions, event_ids in _state_groups(
        alias=alias, subject_ids=ids, purposes=known, at=at, id_array=id_array
    ):
        if is_stale:
            stale.update(positions)
            continue
        record = (0, decision, jur, 0.0, None if live else float("-inf"))
        verdict = _evaluate(config[purpose], record, None, None, at_ts, cache)
        if verdict.allowed:
            allowed_at[purpose].update(zip(positions, event_ids, strict=True))
        else:
            denied_at[purpose].update(positions)
    # the answer without any record, per purpose (e.g. a contract basis needs none)
    bare = {
        k: k in config and _evaluate(config[k], None, None, None, at_ts, cache).allowed
        for k in keys
    }
    refused: dict[int, str] = {}
    out: list[list[int] | None] = [None] * len(ids)
    plan = [(k, allowed_at[k].get, denied_at[k], bare[k]) for k in keys]
    for position in range(1, len(ids) + 1):
        if position in stale:
            continue
        events = []
        for key, granted, denied, bare_ok in plan:
            event_id = granted(position)
            if event_id is not None:
                events.append(event_id)
            elif not bare_ok or position in denied:
                refused[position - 1] = key
                break
        else:
            out[position - 1] = sorted(set(events)) if len(events) > 1 else events
    if stale:
        # merged subjects, and subjects whose latest state is later than ``at``: the full path
        # answers with the survivor's consent and folds history
        late_at = sorted(stale)
        late = [ids[p - 1] for p in late_at]
        late = [s if isinstance(s, UUID) else UUID(str(s)) for s in late]
        decisions = can_process_bulk(
            region=region, subject_ids=list(dict.fromkeys(late)), purposes=keys, at=at
        )
        more_refused, more_allowed = _fold(late, keys, lambda sid, key: decisions.get((sid, key)))
        for position, sid in zip(late_at, late, strict=True):
            if sid in more_refused:
                refused[position - 1] = more_refused[sid]
            else:
                out[position - 1] = more_allowed[sid]
    return refused, out


def _positions(ids, refused_by, allowed_by) -> tuple[dict[int, str], list[list[int] | None]]:
    refused = {i: refused_by[sid] for i, sid in enumerate(ids) if sid in refused_by}
    return refused, [allowed_by.get(sid) for sid in ids]


def _fold(ids, keys, decision_of) -> tuple[dict[UUID, str], dict[UUID, list[int]]]:
    refused: dict[UUID, str] = {}
    allowed: dict[UUID, list[int]] = {}
    for sid in ids:
        events: set[int] = set()
        for key in keys:
            decision = decision_of(sid, key)
            if decision is None or not decision.allowed:
                refused[sid] = key
                break
            events.update(decision.event_ids)
        else:
            allowed[sid] = sorted(events)
    return refused, allowed


def _state_groups(
    *,
    alias: str,
    subject_ids: Sequence[UUID],
    purposes: list[str],
    at: datetime,
    id_array: str | None = None,
):
    """Global-scope state rows grouped by what decides: ``(purpose, decision, jurisdiction,
    live, stale, [positions], [event ids])``; positions are 1-based indexes into the ids."""
    if not purposes:
        return []
    sql = (
        "SELECT cs.purpose, cs.decision, cs.jurisdiction, "
        "(cs.expires_at IS NULL OR cs.expires_at > %(at)s), cs.captured_at > %(at)s, "
        "array_agg(t.i), array_agg(cs.event_id) "
        "FROM unnest(%(ids)s::text::uuid[]) WITH ORDINALITY AS t(id, i) "
        f"JOIN {ConsentState._meta.db_table} cs ON cs.subject_id = t.id "
        "WHERE cs.purpose = ANY(%(purposes)s::text[]) AND cs.source = '' "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    connection = connections[alias]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            sql,
            {
                "at": at,
                "ids": id_array or "{" + ",".join(map(str, subject_ids)) + "}",
                "purposes": purposes,
            },
            binary=True,
        )
        return cursor.fetchall()


def _merged_positions(*, alias: str, ids: Sequence[UUID], id_array: str | None) -> set[int]:
    """1-based positions of the merged subjects among ``ids`` (PostgreSQL)."""
    from compliance.models import Subject  # as in ``_survivors``

    sql = (
        "SELECT t.i FROM unnest(%(ids)s::text::uuid[]) WITH ORDINALITY AS t(id, i) "
        f"JOIN {Subject._meta.db_table} s ON s.id = t.id WHERE s.merged_into IS NOT NULL"
    )
    connection = connections[alias]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, {"ids": id_array or "{" + ",".join(map(str, ids)) + "}"}, binary=True)
        return {row[0] for row in cursor.fetchall()}


# Hot-path records are plain tuples (event_id, decision, jurisdiction, captured, expires) with
# times as POSIX timestamps: 100,000 of them are built and compared per bulk call.
_EID, _DEC, _JUR, _CAP, _EXP = range(5)


def _fast(record: Record) -> tuple:
    return (
        record.event_id,
        record.decision,
        record.jurisdiction,
        record.captured_at.timestamp(),
        record.expires_at.timestamp() if record.expires_at else None,
    )


def evaluate(
    *,
    purpose: PurposeModel,
    global_record: Record | None,
    source_record: Record | None,
    jurisdiction: str | None,
    at: datetime,
) -> Decision:
    """The rules of the module docstring, for one subject and purpose (no queries)."""
    return _evaluate(
        purpose,
        _fast(global_record) if global_record else None,
        _fast(source_record) if source_record else None,
        jurisdiction,
        at.timestamp(),
        {},
    )


def _live_grant(r: tuple, at: float) -> bool:
    return r[_DEC] == "granted" and (r[_EXP] is None or r[_EXP] > at)


def _lapsed(r: tuple, at: float) -> bool:
    return r[_DEC] == "expired" or (r[_DEC] == "granted" and r[_EXP] is not None and r[_EXP] <= at)


def _evaluate(purpose, global_record, source_record, jurisdiction, at: float, cache) -> Decision:
    deciding = _deciding(global_record, source_record, at)
    if not jurisdiction:
        if global_record is not None and source_record is not None:
            ordered = sorted((global_record, source_record), key=lambda r: (r[_CAP], r[_EID]))
            jurisdiction = ordered[1][_JUR] or ordered[0][_JUR] or None
        else:
            jurisdiction = (global_record or source_record or ("", "", ""))[_JUR] or None
    rules = cache.get((purpose.key, jurisdiction)) or _rules(purpose, jurisdiction, cache)
    has_consent, consent_required, alternative = rules
    ids = (deciding[_EID],) if deciding is not None else ()
    if deciding is not None and has_consent and _live_grant(deciding, at):
        return Decision(True, "consent", ids, "granted")
    if consent_required:
        if deciding is None:
            return Decision(False, None, (), "no_record")
        if _lapsed(deciding, at):
            return Decision(False, None, ids, "expired")
        if deciding[_DEC] == Choice.INVALID_SIGNAL:
            return Decision(False, None, ids, "unreadable_signal")
        return Decision(False, None, ids, deciding[_DEC])
    if alternative is None:
        return Decision(False, None, ids, "no_lawful_basis")
    if alternative in _UNCONDITIONAL:
        return Decision(True, alternative, ids, alternative)
    if deciding is not None and deciding[_DEC] in _BLOCKS_ALTERNATIVE:
        return Decision(False, None, ids, deciding[_DEC])
    reason = "not_opted_out" if alternative == "us_opt_out" else "no_objection"
    return Decision(True, alternative, ids, reason)


def _deciding(global_record, source_record, at: float):
    if source_record is None or global_record is None:
        return source_record or global_record
    if (source_record[_CAP], source_record[_EID]) >= (global_record[_CAP], global_record[_EID]):
        return source_record
    # the global record is later
    if global_record[_DEC] in NEGATIVE_DECISIONS:
        return global_record  # a later global withdrawal beats any grant
    if _lapsed(source_record, at):
        return global_record
    return source_record  # a source-scoped decision beats a global one for that source


def _alternative_basis(*, bases: list[str], jurisdiction: str | None) -> str | None:
    if "us_opt_out" in bases and jurisdiction and country_of(jurisdiction=jurisdiction) == "US":
        return "us_opt_out"
    for basis in (*_UNCONDITIONAL, *_OBJECTABLE):
        if basis in bases:
            return basis
    return None


def _records(
    *, alias: str, subject_ids: list[UUID], purposes: list[str], source: str | None, at: datetime
) -> dict[tuple[int, str, str], tuple]:
    if not subject_ids or not purposes:
        return {}
    scopes = ["", source] if source else [""]
    at_ts = at.timestamp()
    records: dict[tuple[int, str, str], tuple] = {}
    stale: set[UUID] = set()
    for chunk in _chunks(alias, subject_ids):
        for sid, purpose, src, *record in _state_rows(
            alias=alias, subject_ids=chunk, purposes=purposes, scopes=scopes
        ):
            if record[_CAP] > at_ts:
                stale.add(sid)
                continue
            records[(sid.int, purpose, src)] = tuple(record)
    if stale:
        # ``at`` lies before the latest state of these subjects: fold their history up to ``at``
        stale_ints = {sid.int for sid in stale}
        for key in [k for k in records if k[0] in stale_ints]:
            del records[key]
        history = history_records(
            alias=alias, subject_ids=sorted(stale), purposes=purposes, scopes=scopes, at=at
        )
        records.update({(k[0].int, k[1], k[2]): _fast(r) for k, r in history.items()})
    return records


def _survivors(*, alias: str, subject_ids: list[UUID]) -> dict[UUID, UUID]:
    """``{merged subject id: survivor id}`` for the merged ones among ``subject_ids``."""
    from compliance.models import Subject

    out: dict[UUID, UUID] = {}
    if not subject_ids:
        return out
    connection = connections[alias]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"SELECT id, merged_into FROM {Subject._meta.db_table} "
                "WHERE merged_into IS NOT NULL AND id = ANY(%b)",
                [list(subject_ids)],
                binary=True,
            )
            return dict(cursor.fetchall())
    for chunk in _chunks(alias, subject_ids):
        out.update(
            Subject.objects.using(alias)
            .filter(id__in=chunk, merged_into__isnull=False)
            .values_list("id", "merged_into")
        )
    return out


def _state_rows(*, alias: str, subject_ids: list[UUID], purposes: list[str], scopes: list[str]):
    """State rows ``(subject_id, purpose, source, event_id, decision, jurisdiction, captured,
    expires)`` with POSIX timestamps. On PostgreSQL the ids travel as ONE ``uuid[]`` literal
    (``= ANY``) instead of 100,000 placeholders, and times come back as float8 (the ORM's
    per-value timestamptz loader costs more than the whole query)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        rows = (
            ConsentState.objects.using(alias)
            .filter(subject_id__in=subject_ids, purpose__in=purposes, source__in=scopes)
            .values_list(
                "subject_id", "purpose", "source", "event_id", "decision", "jurisdiction",
                "captured_at", "expires_at",
            )
        )  # fmt: skip
        return [
            (*row[:6], row[6].timestamp(), row[7].timestamp() if row[7] else None) for row in rows
        ]
    sql = (
        "SELECT subject_id, purpose, source, event_id, decision, jurisdiction, "
        "extract(epoch from captured_at)::float8, extract(epoch from expires_at)::float8 "
        f"FROM {ConsentState._meta.db_table} "
        "WHERE subject_id = ANY(%b) AND purpose = ANY(%s::text[]) AND source = ANY(%s::text[])"
    )
    # A server-side-binding cursor on the raw connection: the ids travel as ONE binary uuid[]
    # parameter (the default client-side binding would quote a 3.7 MB literal for 100,000).
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [list(subject_ids), list(purposes), list(scopes)], binary=True)
        return cursor.fetchall()


def history_records(
    *,
    alias: str,
    subject_ids: Iterable[UUID],
    purposes: Iterable[str] | None,
    scopes: Iterable[str] | None,
    at: datetime | None,
) -> dict[tuple[UUID, str, str], Record]:
    """Fold events into the latest record per (subject, purpose, scope key); the projection."""
    ids = list(subject_ids)
    out: dict[tuple[UUID, str, str], Record] = {}
    for chunk in _chunks(alias, ids):
        qs = ConsentEvent.objects.using(alias).filter(subject_id__in=chunk)
        if purposes is not None:
            qs = qs.filter(purpose__in=list(purposes))
        if at is not None:
            qs = qs.filter(captured_at__lte=at)
        for event in qs.order_by("captured_at", "id").values(
            "id",
            "subject_id",
            "purpose",
            "source",
            "scope",
            "decision",
            "lawful_basis",
            "jurisdiction",
            "captured_at",
            "expires_at",
        ):
            scope_key = event["source"] if event["scope"] == "source" else ""
            if scopes is not None and scope_key not in scopes:
                continue
            out[(event["subject_id"], event["purpose"], scope_key)] = Record(
                event["id"],
                event["decision"],
                event["lawful_basis"],
                event["jurisdiction"],
                event["captured_at"],
                event["expires_at"],
            )
    return out


def _chunks(alias: str, ids: list[UUID]) -> Iterable[list[UUID]]:
    if connections[alias].vendor != "sqlite" or len(ids) <= _SQLITE_CHUNK:
        yield ids
        return
    for start in range(0, len(ids), _SQLITE_CHUNK):
        yield ids[start : start + _SQLITE_CHUNK]
