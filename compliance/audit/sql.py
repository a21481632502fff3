"""Vendor-specific SQL of the audit log: the one module that knows whether a chain lives in
PostgreSQL or SQLite.

* the chain head: ``audit_head_lock``/``audit_head_advance`` (owner-defined guard functions) on
  PostgreSQL, an UPDATE that takes the write lock on SQLite;
* storing hashed rows: COPY (text format, streamed) on PostgreSQL from ``COPY_THRESHOLD`` rows,
  one ``INSERT`` from column arrays below it; ``bulk_create`` on SQLite;
* reading rows: ``event_rows`` (a server-side cursor on PostgreSQL, a lazy cursor on SQLite) and
  ``ranges_scan`` (``COPY ... TO STDOUT``, ranges in parallel processes on PostgreSQL).

Rows read are tuples ``(seq, occurred_at, code, actor_type, actor_id, subject_token,
object_type, object_id, payload, hash)`` with ``occurred_at`` already in the canonical
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` form.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import psycopg
from django.db import connections, transaction
from django.db.models import F

from compliance.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from compliance.db.arrays import array_literal
from compliance.db.batch import statements_run
from compliance.db.vendor import is_postgresql

EVENT_TABLE = AuditEvent._meta.db_table
CHECKPOINT_TABLE = AuditCheckpoint._meta.db_table
HEAD_TABLE = AuditChainHead._meta.db_table
#: from this many entries in one call, PostgreSQL writes them with COPY instead of INSERT
COPY_THRESHOLD = 500
_FIELDS = (
    "seq, {time}, code, actor_type, actor_id, subject_token, object_type, object_id, payload, hash"
)
_PG_TIME = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
# Django stores ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) text on SQLite
_SQLITE_TIME = (
    "substr(occurred_at, 1, 10) || 'T' || substr(occurred_at || '.000000', 12, 15) || 'Z'"
)
_COPY_IN = (
    f"COPY {EVENT_TABLE} (seq, occurred_at, code, actor_type, actor_id, subject_token, "
    "object_type, object_id, payload, hash) FROM STDIN"
)
_INSERT_ARRAYS = (
    f"INSERT INTO {EVENT_TABLE} (occurred_at, seq, code, actor_type, actor_id, subject_token, "
    "object_type, object_id, payload, hash) SELECT %s, r.seq, r.code, r.actor_type, r.actor_id, "
    "r.subject_token, r.object_type, r.object_id, r.payload::jsonb, r.hash FROM unnest("
    "%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[]) AS r(seq, code, actor_type, actor_id, subject_token, object_type, "
    "object_id, payload, hash)"
)
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_FETCH = 5000
_LINES = 2000
_names = itertools.count()


# --- the chain head -------------------------------------------------------------------------


#: PostgreSQL: lock the chain head (created at genesis if missing), answer ``(size, hash)``
HEAD_LOCK = "SELECT head_size, head_value FROM audit_head_lock(%s)"


def head_lock(*, using: str, chain_id: str, genesis: str) -> tuple[int, str]:
    """Lock the chain head (created at ``genesis`` if missing): ``(size, head hash)``.

    PostgreSQL: through ``audit_head_lock``, an owner-defined function (the runtime role has no
    UPDATE or INSERT on the head). SQLite: an UPDATE takes the database's write lock."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute(HEAD_LOCK, [chain_id])
            return cursor.fetchone()
    heads = AuditChainHead.objects.using(using)
    if not heads.filter(chain_id=chain_id).update(size=F("size")):
        heads.get_or_create(chain_id=chain_id, defaults={"size": 0, "head_hash": genesis})
    return heads.filter(chain_id=chain_id).values_list("size", "head_hash").get()


def head_advance(*, using: str, chain_id: str, size: int, head_hash: str) -> None:
    """Move the head to ``size``/``head_hash``. PostgreSQL: ``audit_head_advance`` checks that
    the entries up to ``size`` exist and end with that hash (and clears the membership changes
    these entries audit)."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT audit_head_advance(%s, %s, %s)", [chain_id, size, head_hash])
        return
    AuditChainHead.objects.using(using).filter(chain_id=chain_id).update(
        size=size, head_hash=head_hash
    )


# --- storing rows ---------------------------------------------------------------------------


def events_store(
    *,
    using: str,
    rows: Iterator[Sequence],
    count: int,
    occurred_at: datetime,
    events: Sequence[AuditEvent],
) -> Sequence[AuditEvent]:
    """Store the ``count`` hashed ``rows`` (``seq, code, actor_type, actor_id, subject_token,
    object_type, object_id, payload_json, hash``, produced while consumed) whose model
    instances ``events`` builds once they are all produced. PostgreSQL: from ``COPY_THRESHOLD``
    rows COPY, streamed (the database stores one chunk while the next one is hashed), below it
    ONE ``INSERT`` from column arrays; ``events`` is returned as it is (instances without
    ``pk``). SQLite: ``bulk_create`` of the instances, returned as a list."""
    if count >= COPY_THRESHOLD and is_postgresql(using):
        _copy_in(using=using, rows=rows, occurred_at=occurred_at)
        return events
    if is_postgresql(using):
        _insert_arrays(using=using, rows=list(rows), occurred_at=occurred_at)
        return events
    for _ in rows:
        pass
    saved = list(events)
    AuditEvent.objects.using(using).bulk_create(saved, batch_size=2000)
    return saved


def events_store_advanced(
    *,
    using: str,
    chain_id: str,
    rows: Iterator[Sequence],
    count: int,
    occurred_at: datetime,
    events: Sequence[AuditEvent],
    commit: bool = False,
) -> Sequence[AuditEvent]:
    """``events_store``, then the head moved to the last row (``head_advance``). PostgreSQL below
    ``COPY_THRESHOLD`` rows: both in ONE statement (the rows' INSERT in a CTE that
    ``audit_head_advance``, a volatile function, sees through its fresh snapshot), which with
    ``commit`` also ends the caller's own transaction (``statements_run(commit=True)``)."""
    if count >= COPY_THRESHOLD or not is_postgresql(using):
        stored = events_store(
            using=using, rows=rows, count=count, occurred_at=occurred_at, events=events
        )
        last = stored[-1]
        head_advance(using=using, chain_id=chain_id, size=last.seq, head_hash=last.hash)
        return stored
    listed = list(rows)
    last = listed[-1]
    statement = insert_arrays_sql(rows=listed, occurred_at=occurred_at, advance=(chain_id, last))
    statements_run(using=using, statements=[statement], commit=commit)
    return events


def _insert_arrays(
    *,
    using: str,
    rows: list[Sequence],
    occurred_at: datetime,
) -> None:
    """Write ``rows`` with ONE ``INSERT ... SELECT`` from one array per column (no model
    instances: the rows as hashed)."""
    statement, params = insert_arrays_sql(rows=rows, occurred_at=occurred_at)
    with connections[using].cursor() as cursor:
        cursor.execute(statement, params)


def insert_arrays_sql(
    *, rows: list[Sequence], occurred_at: datetime, advance: tuple[str, Sequence] | None = None
) -> tuple[str, list]:
    """The statement (SQL, params) of ``_insert_arrays`` (PostgreSQL), for a caller that sends
    it with others in one round trip."""
    columns = list(zip(*rows, strict=True))
    # one array literal per column (``compliance.db.arrays``): seq and code as their digits
    params = [
        occurred_at,
        *(array_literal(map(str, column)) for column in columns[:2]),
        *(array_literal(column) for column in columns[2:]),
    ]
    if advance is None:
        return _INSERT_ARRAYS, params
    chain_id, last = advance
    statement = (
        f"WITH stored AS ({_INSERT_ARRAYS} RETURNING 1) SELECT audit_head_advance(%s, %s, %s) "
        "FROM (SELECT count(*) FROM stored) AS written"
    )
    return statement, [*params, chain_id, last[0], last[8]]


def _copy_field(value: str) -> str:
    """A text value in COPY's text format (backslash, tab, newline, CR escaped)."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_in(*, using: str, rows: Iterable[Sequence], occurred_at: datetime) -> None:
    """Write ``rows`` with COPY in text format, built from the tuples directly and sent in
    chunks as they come."""
    occurred = occurred_at.isoformat()
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(_COPY_IN) as copy:
            lines: list[str] = []
            add = lines.append
            for seq, code, a_type, a_id, token, o_type, o_id, payload, digest in rows:
                line = (
                    f"{seq}\t{occurred}\t{code}\t{a_type}\t{a_id}\t{token}\t{o_type}\t{o_id}\t"
                    f"{payload}\t{digest}"
                )
                if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != 9:
                    fields = (seq, occurred, code, a_type, a_id, token, o_type, o_id, payload)
                    line = "\t".join(_copy_field(str(value)) for value in (*fields, digest))
                add(line)
                if len(lines) == 2000:
                    copy.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                copy.write("\n".join(lines) + "\n")


# --- reading rows ---------------------------------------------------------------------------


def event_rows(
    *, using: str, start_seq: int | None = None, end_seq: int | None = None, limit: int = 0
) -> Iterator[tuple]:
    """Rows of the chain of ``using`` with ``start_seq <= seq <= end_seq``, by seq, at most
    ``limit`` (0: all), ``payload`` parsed; streamed in constant memory."""
    clauses, params = [], []
    if start_seq is not None:
        clauses.append("seq >= %s")
        params.append(start_seq)
    if end_seq is not None:
        clauses.append("seq <= %s")
        params.append(end_seq)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    tail = f" ORDER BY seq{f' LIMIT {int(limit)}' if limit else ''}"
    if is_postgresql(using):
        sql = f"SELECT {_FIELDS.format(time=_PG_TIME)} FROM {EVENT_TABLE}{where}{tail}"
        return _server_side_rows(using=using, sql=sql, params=params)
    sql = f"SELECT {_FIELDS.format(time=_SQLITE_TIME)} FROM {EVENT_TABLE}{where}{tail}"
    return _client_side_rows(using=using, sql=sql, params=params)


def _parsed(cursor) -> Iterator[tuple]:
    loads = json.loads
    while batch := cursor.fetchmany(_FETCH):
        for row in batch:
            payload = row[8]
            if isinstance(payload, str):  # SQLite, and Django's psycopg setup loads jsonb as text
                payload = loads(payload)
            yield (*row[:8], payload, row[9])


def _server_side_rows(*, using: str, sql: str, params: list) -> Iterator[tuple]:
    connection = connections[using]
    with transaction.atomic(using=using):
        connection.ensure_connection()
        cursor = connection.connection.cursor(name=f"audit_rows_{next(_names)}")
        cursor.itersize = _FETCH
        try:
            cursor.execute(sql, params)
            yield from _parsed(cursor)
        finally:
            cursor.close()


def _client_side_rows(*, using: str, sql: str, params: list) -> Iterator[tuple]:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        yield from _parsed(cursor)


def scan_processes(*, using: str, wanted: int) -> int:
    """How many processes may read the chain of ``using`` at once for ``ranges_scan``:
    ``wanted`` on PostgreSQL outside a transaction (each process connects on its own and sees
    committed rows only) where ``fork`` exists; else 1."""
    if (
        wanted > 1
        and is_postgresql(using)
        and not connections[using].in_atomic_block
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        return wanted
    return 1


def ranges_scan(
    *, using: str, spans: Sequence[tuple[int, int]], scans: Sequence[Callable]
) -> list[tuple]:
    """``scan(rows)`` for each ``(first, last)`` span and its scan: ``rows`` is an iterator of
    the entries ``first..last`` by seq, each a sequence of the raw columns (``seq`` and
    ``code`` as text or int, ``payload`` as JSON text). One span runs in this process; several
    run in one forked process each (``scan_processes``), each on its own connection.
    PostgreSQL reads with ``COPY ... TO STDOUT``."""
    if len(spans) == 1:
        with _range_rows(using=using, first=spans[0][0], last=spans[0][1]) as rows:
            return [scans[0](rows)]
    conninfo = _conninfo(using)
    # fork: the children inherit the loaded code and exit with os._exit, never touching the
    # parent's connections; each opens its own
    with multiprocessing.get_context("fork").Pool(len(spans)) as pool:
        return pool.starmap(
            _scan_in_child,
            [(conninfo, span, scan) for span, scan in zip(spans, scans, strict=True)],
        )


def _copy_out(first: int, last: int) -> str:
    return (
        f"COPY (SELECT {_FIELDS.format(time=_PG_TIME)} FROM {EVENT_TABLE} "
        f"WHERE seq >= {int(first)} AND seq <= {int(last)} ORDER BY seq) TO STDOUT"
    )


@contextmanager
def _range_rows(*, using: str, first: int, last: int) -> Iterator[Iterator[Sequence]]:
    with connections[using].cursor() as cursor:
        if not is_postgresql(using):
            cursor.execute(
                f"SELECT {_FIELDS.format(time=_SQLITE_TIME)} FROM {EVENT_TABLE} "
                "WHERE seq >= %s AND seq <= %s ORDER BY seq",
                [first, last],
            )
            yield (row for batch in iter(lambda: cursor.fetchmany(_FETCH), []) for row in batch)
            return
        with cursor.cursor.copy(_copy_out(first, last)) as copy:
            yield _copy_rows(copy)
            for _ in copy:  # stopped early: read the rest, so that the connection stays usable
                pass


def _scan_in_child(conninfo: dict, span: tuple[int, int], scan: Callable) -> tuple:
    with psycopg.connect(**conninfo) as connection, connection.transaction():
        with connection.cursor() as cursor, cursor.copy(_copy_out(*span)) as copy:
            result = scan(_copy_rows(copy))
            for _ in copy:
                pass
    return result


def _copy_rows(copy) -> Iterator[Sequence]:
    """The rows of a COPY TO STDOUT in text format, whatever the message boundaries: the
    fields split by hand, or decoded where a row holds a backslash (an escape or NULL)."""
    pending = b""
    batch: list = []
    for data in itertools.chain(copy, [None]):
        if data is not None:
            batch.append(data)
            if len(batch) < _LINES:
                continue
        blob = pending + b"".join(batch)
        batch.clear()
        cut = blob.rfind(b"\n") + 1 if data is not None else len(blob)
        pending = blob[cut:]
        for line in blob[:cut].decode().split("\n"):
            if line:
                yield line.split("\t") if "\\" not in line else _decoded(line)


def _decoded(line: str) -> list:
    """A COPY text line with its escapes decoded (NULL as ``None``, a NULL payload as
    ``null``)."""

    def one(match: re.Match) -> str:
        octal, hexa, char = match.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _SIMPLE_ESCAPES.get(char, char)

    fields = [None if part == "\\N" else _COPY_ESCAPES.sub(one, part) for part in line.split("\t")]
    if fields[8] is None:
        fields[8] = "null"
    return fields


def _conninfo(using: str) -> dict:
    settings = connections[using].settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "host": settings.get("HOST") or None,
        "port": settings.get("PORT") or None,
    }
    options = dict(settings.get("OPTIONS") or {})
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options"):
        if key in options:
            params[key] = options[key]
    return {k: v for k, v in params.items() if v is not None}
