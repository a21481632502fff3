"""May we process a subject's data for a purpose? Allowed or not, on what basis, proven by what.

Contract (relied on by segments and events):

* ``can_process(subject=, purpose=, source=None, jurisdiction=None, at=None) -> Verdict``
* ``can_process_bulk(region=, subject_ids=, purposes=, source=None, jurisdiction=None, at=None)``
  answers ``{(subject_id, purpose): Verdict}`` with a constant number of queries (one for the
  purposes, one for merged subjects, one for the state projection, and one more for history only
  when ``at`` lies before some state row); on SQLite the id list is chunked to stay under its
  variable limit. A merged subject is answered with its survivor's consent, as by
  ``can_process``.
* ``consent_gate_positions(...)``: the same answers for "every purpose, global scope", by
  position, for bulk callers (segments); see its docstring.

The rules themselves are ``compliance.consent.rules`` (its docstring states them); this module
only reads the records they need. ``jurisdiction`` defaults to the jurisdiction of the latest
record for the subject and purpose; ``at`` defaults to now, and a past ``at`` evaluates the
history as it stood then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from django.utils import timezone

from compliance.consent import sql
from compliance.consent.models import ConsentState
from compliance.consent.rules import UNKNOWN_PURPOSE, Record, Verdict, evaluate_fast
from compliance.consent.selectors.config import purposes_by_key
from compliance.consent.selectors.history import history_records
from compliance.regions import region_alias

#: record key: (1-based position of the subject in the ids read, purpose, scope key)
_Key = tuple[int, str, str]


def can_process(
    *,
    subject,
    purpose: str,
    source: str | None = None,
    jurisdiction: str | None = None,
    at: datetime | None = None,
) -> Verdict:
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
    survivors: bool = False,
    states: Sequence[StateRow] | None = None,
) -> dict[tuple[UUID, str], Verdict]:
    """Verdicts for every (subject, purpose) pair; constant number of queries. ``survivors``:
    the caller read these subjects just now and none was merged (no look-up of merges);
    ``states``: with ``survivors``, every state row of these subjects (``StateRow``), which the
    caller read just now (no state query)."""
    alias = region_alias(region=region)
    at = at or timezone.now()
    at_ts = at.timestamp()
    ids = [s if isinstance(s, UUID) else UUID(str(s)) for s in subject_ids]
    purpose_keys = list(dict.fromkeys(purposes))
    config = purposes_by_key(keys=purpose_keys)
    known = [k for k in purpose_keys if k in config]
    if survivors:
        read, id_array, positions = ids, sql.uuid_array(ids), list(range(1, len(ids) + 1))
    else:
        read, id_array, positions = _survivor_positions(alias=alias, ids=ids)
    records = _records(
        alias=alias,
        subject_ids=read,
        id_array=id_array,
        purposes=known,
        source=source,
        at=at,
        states=states if survivors else None,
    )
    out: dict[tuple[UUID, str], Verdict] = {}
    cache: dict = {}
    get = records.get
    for key in purpose_keys:
        purpose = config.get(key)
        if purpose is None:
            for subject_id in ids:
                out[(subject_id, key)] = UNKNOWN_PURPOSE
            continue
        nothing = None  # the answer for a subject without records is the same for all of them
        for subject_id, position in zip(ids, positions, strict=True):
            global_record = get((position, key, ""))
            source_record = get((position, key, source)) if source else None
            if global_record is None and source_record is None:
                if nothing is None:
                    nothing = evaluate_fast(purpose, None, None, jurisdiction, at_ts, cache)
                out[(subject_id, key)] = nothing
            else:
                out[(subject_id, key)] = evaluate_fast(
                    purpose, global_record, source_record, jurisdiction, at_ts, cache
                )
    return out


def _survivor_positions(*, alias: str, ids: list[UUID]) -> tuple[list[UUID], str, list[int]]:
    """The ids to read (``ids``, then the survivors of merged ones), their array text, and
    per id the 1-based position whose records answer it: its own, or its survivor's."""
    id_array = sql.uuid_array(ids)
    survivors = sql.merged_subjects(alias=alias, subject_ids=ids, id_array=id_array)
    if not survivors:
        return ids, id_array, list(range(1, len(ids) + 1))
    extra = list(dict.fromkeys(survivors.values()))
    at_position = {sid: len(ids) + n for n, sid in enumerate(extra, 1)}
    positions = [
        at_position[survivors[sid]] if sid in survivors else n for n, sid in enumerate(ids, 1)
    ]
    read = [*ids, *extra]
    return read, sql.uuid_array(read), positions


def _records(
    *,
    alias: str,
    subject_ids: list[UUID],
    id_array: str,
    purposes: list[str],
    source: str | None,
    at: datetime,
    states: Sequence[StateRow] | None = None,
) -> dict[_Key, Record]:
    """The latest record per (position, purpose, scope key) as of ``at`` (from ``states``, the
    subjects' state rows, when the caller has them)."""
    if not subject_ids or not purposes:
        return {}
    scopes = ["", source] if source else [""]
    at_ts = at.timestamp()
    make = Record._make
    records: dict[_Key, Record] = {}
    stale: set[int] = set()
    if states is None:
        rows = sql.state_rows(
            alias=alias,
            subject_ids=subject_ids,
            purposes=purposes,
            scopes=scopes,
            id_array=id_array,
        )
    else:
        rows = _state_tuples(
            states=states, subject_ids=subject_ids, purposes=purposes, scopes=scopes
        )
    for row in rows:
        if row[6] > at_ts:  # captured after ``at``
            stale.add(row[0])
        else:
            records[row[:3]] = make(row[3:])
    if stale:
        # ``at`` lies before the latest state of these subjects: fold their history up to ``at``
        for key in [k for k in records if k[0] in stale]:
            del records[key]
        by_id: dict[UUID, list[int]] = defaultdict(list)
        for position in stale:
            by_id[subject_ids[position - 1]].append(position)
        history = history_records(
            alias=alias, subject_ids=sorted(by_id), purposes=purposes, scopes=scopes, at=at
        )
        for (sid, purpose, scope), latest in history.items():
            for position in by_id[sid]:
                records[(position, purpose, scope)] = latest.record()
    return records


#: a consent state row as the rules read it: ``(subject id, purpose, source, event id,
#: decision, jurisdiction, captured, expires)``, times as POSIX seconds (``expires`` None: never)
StateRow = tuple[UUID, str, str, int, str, str, float, float | None]


def state_rows_of(states: Iterable[ConsentState]) -> list[StateRow]:
    """``StateRow``s of state rows read as model instances."""
    return [
        (
            s.subject_id,
            s.purpose,
            s.source,
            s.event_id,
            s.decision,
            s.jurisdiction,
            s.captured_at.timestamp(),
            s.expires_at.timestamp() if s.expires_at else None,
        )
        for s in states
    ]


def _state_tuples(
    *, states: Sequence[StateRow], subject_ids: list[UUID], purposes: list[str], scopes
) -> list[tuple]:
    """``sql.state_rows``'s tuples (subject ids as their positions) from rows already read."""
    position = {sid: n for n, sid in enumerate(subject_ids, 1)}
    wanted, in_scope = set(purposes), set(scopes)
    return [
        (position[row[0]], *row[1:])
        for row in states
        if row[0] in position and row[1] in wanted and row[2] in in_scope
    ]


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
    to avoid hashing 100,000 UUIDs; ``id_array`` is ``sql.uuid_array(subject_ids)`` when the
    caller already built it.

    The database groups the state rows by what the rules read (purpose, decision,
    jurisdiction, whether the expiry is after ``at``) and each group is decided by the rules
    themselves (``evaluate_fast``), so the answers are ``can_process_bulk``'s
    (``tests/consent/test_gate_differential.py`` checks it). Subjects whose latest state is
    later than ``at`` and merged subjects (answered with their survivor's consent) go through
    ``can_process_bulk``; ``merged_excluded=True`` skips looking the merged ones up: the caller
    guarantees that no id is a merged subject (it refused or filtered them already)."""
    keys = list(dict.fromkeys(purposes))
    if not subject_ids or not keys:
        return {}, [[] for _ in subject_ids]
    alias = region_alias(region=region)
    at = at or timezone.now()
    config = purposes_by_key(keys=keys)
    id_array = id_array or sql.uuid_array(subject_ids)
    groups = sql.state_groups(
        alias=alias,
        subject_ids=subject_ids,
        purposes=[k for k in keys if k in config],
        at=at,
        id_array=id_array,
    )
    cache: dict = {}
    allowed_at, denied_at, stale = _decide_groups(groups=groups, config=config, at=at, cache=cache)
    if not merged_excluded:
        stale |= sql.merged_positions(alias=alias, subject_ids=subject_ids, id_array=id_array)
    # the answer without any record, per purpose (e.g. a contract basis needs none)
    bare = {
        k: k in config and evaluate_fast(config[k], None, None, None, at.timestamp(), cache).allowed
        for k in keys
    }
    refused: dict[int, str] = {}
    out: list[list[int] | None] = [None] * len(subject_ids)
    plan = [(k, allowed_at[k].get, denied_at[k], bare[k]) for k in keys]
    for position in range(1, len(subject_ids) + 1):
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
        _gate_full_path(
            region=region, subject_ids=subject_ids, positions=sorted(stale), keys=keys, at=at,
            refused=refused, out=out,
        )  # fmt: skip
    return refused, out


def _decide_groups(*, groups, config: dict, at: datetime, cache: dict):
    """Each group of state rows decided by the rules: ``(allowed, denied, stale)`` where
    ``allowed[purpose]`` maps a position to its deciding event, ``denied[purpose]`` holds the
    refused positions and ``stale`` the positions whose state is later than ``at``."""
    at_ts = at.timestamp()
    allowed: dict[str, dict[int, int]] = defaultdict(dict)
    denied: dict[str, set[int]] = defaultdict(set)
    stale: set[int] = set()
    for purpose, decision, jurisdiction, live, is_stale, positions, event_ids in groups:
        if is_stale:
            stale.update(positions)
            continue
        # the group's expiry, as the rules compare it: none (live), or one not after ``at``
        record = Record(0, decision, jurisdiction, 0.0, None if live else at_ts)
        if evaluate_fast(config[purpose], record, None, None, at_ts, cache).allowed:
            allowed[purpose].update(zip(positions, event_ids, strict=True))
        else:
            denied[purpose].update(positions)
    return allowed, denied, stale


def _gate_full_path(
    *,
    region: str,
    subject_ids: Sequence[UUID],
    positions: list[int],
    keys: list[str],
    at: datetime,
    refused: dict[int, str],
    out: list[list[int] | None],
) -> None:
    """Answer the subjects at ``positions`` (1-based) through ``can_process_bulk``, which
    follows merges and folds history, into ``refused`` and ``out``."""
    late = [
        s if isinstance(s, UUID) else UUID(str(s)) for s in (subject_ids[p - 1] for p in positions)
    ]
    verdicts = can_process_bulk(
        region=region, subject_ids=list(dict.fromkeys(late)), purposes=keys, at=at
    )
    for position, sid in zip(positions, late, strict=True):
        events: set[int] = set()
        for key in keys:
            verdict = verdicts[(sid, key)]
            if not verdict.allowed:
                refused[position - 1] = key
                break
            events.update(verdict.event_ids)
        else:
            out[position - 1] = sorted(events)
