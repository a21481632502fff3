"""The DSAR app's hand-written SQL, the one place that knows the database vendors apart.

Each statement serves a set-based step of the erasure engine: any number of rows in one round
trip, where the ORM would need one per row (or Django's ``bulk_update``, a ``CASE`` per column
and row). Both vendors run the same statements (SQLite >= 3.35: ``UPDATE ... FROM``,
``DELETE ... RETURNING``); PostgreSQL only needs the ``VALUES`` columns typed.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connections, transaction
from django.db.models import Model

from compliance.db.vendor import is_postgresql
from compliance.db_guards import erase_rows, is_guarded
from compliance.models import (
    Identity,
    Subject,
    SubjectDirectory,
    SuppressedIdentifier,
    Suppression,
)
from compliance.personal_data import PersonalDataModel


def as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


@dataclass(frozen=True)
class Rows:
    """A set of rows of ``model`` as SQL: ``sql`` selects their primary keys (with
    ``params``); ``column`` holds their subject id."""

    model: type[Model]
    column: str
    sql: str
    params: tuple


def directory_rows(*, subject_ids: Sequence[UUID]) -> Rows:
    """The control directory's rows of ``subject_ids`` (database ``default``)."""
    return subject_rows(using="default", entry=_DIRECTORY, subject_ids=subject_ids)


def subject_rows(
    *, using: str, entry: PersonalDataModel, subject_ids: Sequence[UUID], kept: bool = False
) -> Rows:
    """The rows of ``subject_ids`` in ``entry``'s table that erasure removes (``kept``: those
    the registry's ``retained`` keeps), what ``entry.erasable`` (``entry.kept``) selects, as
    SQL built once per model: PostgreSQL passes the ids as ONE array parameter."""
    postgres = is_postgresql(using)
    sql, column, constants = _subject_sql(entry, kept, using, 0 if postgres else len(subject_ids))
    field = entry.model._meta.get_field(entry.subject_field)
    connection = connections[using]
    ids = [field.get_db_prep_value(sid, connection) for sid in subject_ids]
    return Rows(entry.model, column, sql, (ids, *constants) if postgres else (*ids, *constants))


#: the control directory, read and erased like a registry model (it is not one: not regional)
_DIRECTORY = PersonalDataModel(
    model=SubjectDirectory, subject_field="subject_id", order=0, description="directory"
)


@functools.lru_cache(maxsize=256)
def _subject_sql(
    entry: PersonalDataModel, kept: bool, using: str, count: int
) -> tuple[str, str, tuple]:
    """``subject_rows``' SQL, its subject column and constant params; ``count`` ids in an
    ``IN`` list, or (0) one array parameter."""
    meta = entry.model._meta
    connection = connections[using]
    quote = connection.ops.quote_name
    column = meta.get_field(entry.subject_field).column
    where = f"IN ({', '.join(['%s'] * count)})" if count else "= ANY(%s)"
    sql = (
        f"SELECT {quote(meta.pk.column)} FROM {quote(meta.db_table)} WHERE {quote(column)} {where}"
    )
    constants: tuple = ()
    if entry.retained:  # exact equality on every pair, NULL never equal (as the ORM's filter)
        fields = [meta.get_field(name) for name in entry.retained]
        match = " AND ".join(f"({quote(f.column)} = %s) IS TRUE" for f in fields)
        sql += f" AND ({match})" if kept else f" AND NOT ({match})"
        constants = tuple(f.get_db_prep_value(entry.retained[f.name], connection) for f in fields)
    elif kept:
        sql += " AND 1 = 0"
    return sql, column, constants


def subjects_tree(*, using: str, roots: Sequence[UUID]) -> list[tuple[UUID, str, UUID]]:
    """``(subject id, audit token, root id)`` of each root and, transitively, of every subject
    merged into it, in ONE recursive statement (roots first)."""
    if not roots:
        return []
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = Subject._meta
    table = quote(meta.db_table)
    pk, token = quote(meta.pk.column), quote(meta.get_field("audit_token").column)
    parent = quote(meta.get_field("merged_into").column)
    ids = [meta.pk.get_db_prep_value(root, connection) for root in roots]
    where = "= ANY(%s)" if is_postgresql(using) else f"IN ({', '.join(['%s'] * len(ids))})"
    sql = (
        f"WITH RECURSIVE tree(id, token, root) AS ("
        f"SELECT {pk}, {token}, {pk} FROM {table} WHERE {pk} {where} "
        f"UNION SELECT s.{pk}, s.{token}, tree.root FROM {table} s "
        f"JOIN tree ON s.{parent} = tree.id) "
        "SELECT id, token, root FROM tree"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids] if is_postgresql(using) else ids)
        rows = [(as_uuid(sid), token, as_uuid(root)) for sid, token, root in cursor.fetchall()]
    return sorted(rows, key=lambda row: row[0] != row[2])  # stable: roots first


def suppressions_insert(
    *, using: str, owners: Mapping[UUID, UUID], at: datetime
) -> list[tuple[str, UUID, str, bool]] | None:
    """PostgreSQL: in ONE statement, suppress (reason ``erasure``) the blind index of every
    identity of the subjects of ``owners`` (subject id -> request id) not suppressed yet;
    ``(identifier type, subject id, blind index, whether this statement added it)`` of every
    identity of those subjects, by identity id. Elsewhere: None (the caller uses the ORM)."""
    if not is_postgresql(using):
        return None
    quote = connections[using].ops.quote_name
    identity, suppression = quote(Identity._meta.db_table), quote(Suppression._meta.db_table)
    sql = (
        "WITH owners(subject, request) AS (SELECT * FROM unnest(%s::uuid[], %s::uuid[])), "
        f"added AS (INSERT INTO {suppression} "
        "(blind_index, identifier_type, reason, request_id, created_at) "
        "SELECT i.blind_index, i.identifier_type, 'erasure', o.request, %s "
        f"FROM {identity} i JOIN owners o ON o.subject = i.subject_id "
        "ON CONFLICT (blind_index) DO NOTHING RETURNING blind_index) "
        "SELECT i.identifier_type, i.subject_id, i.blind_index, a.blind_index IS NOT NULL "
        f"FROM {identity} i JOIN owners o ON o.subject = i.subject_id "
        "LEFT JOIN added a ON a.blind_index = i.blind_index ORDER BY i.id"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [list(owners), list(owners.values()), at])
        return [(kind, as_uuid(sid), index, new) for kind, sid, index, new in cursor.fetchall()]


def directory_delete_suppressing(*, subject_ids: Sequence[UUID], at: datetime) -> Counter:
    """Delete the control directory's rows of ``subject_ids`` and add their blind indexes
    (with their regions) to the suppression mirror in the same transaction, so an erased
    identifier is never in neither; rows deleted per subject id. PostgreSQL: ONE statement
    (a data-modifying CTE); elsewhere two, in one transaction on ``default``."""
    rows = directory_rows(subject_ids=subject_ids)
    connection = connections["default"]
    quote = connection.ops.quote_name
    directory, mirror = quote(SubjectDirectory._meta.db_table), quote(_MIRROR)
    pk, column = quote(SubjectDirectory._meta.pk.column), quote(rows.column)
    stamp = SuppressedIdentifier._meta.get_field("created_at").get_db_prep_save(at, connection)
    insert = f"INSERT INTO {mirror} (blind_index, region, created_at) "
    if not is_postgresql("default"):
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            cursor.execute(
                f"{insert}SELECT blind_index, region, %s FROM {directory} WHERE {pk} IN "
                f"({rows.sql}) ON CONFLICT (blind_index) DO NOTHING",
                [stamp, *rows.params],
            )
            return rows_delete(using="default", rows=rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {directory} WHERE {pk} IN ({rows.sql}) "
            f"RETURNING {column} AS s, blind_index, region), "
            f"kept AS ({insert}SELECT blind_index, region, %s FROM gone "
            "ON CONFLICT (blind_index) DO NOTHING) "
            "SELECT s FROM gone",
            [*rows.params, stamp],
        )
        return Counter(as_uuid(value) for (value,) in cursor.fetchall())


_MIRROR = SuppressedIdentifier._meta.db_table


def rows_delete(*, using: str, rows: Rows, limit: int | None = None) -> Counter:
    """Delete at most ``limit`` (None: all) of ``rows`` in one statement; rows deleted per
    subject id."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = rows.model._meta
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    inner = rows.sql if limit is None else f"{rows.sql} LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {pk} IN ({inner}) RETURNING {quote(rows.column)}",
            rows.params,
        )
        return Counter(as_uuid(value) for (value,) in cursor.fetchall())


def rows_delete_all(
    *,
    using: str,
    parts: Sequence[Rows],
    subject_ids: Sequence[UUID],
    request_ids: Sequence[UUID],
) -> list[Counter]:
    """Delete every row of each part: rows deleted per subject id, one Counter per part, in
    order. PostgreSQL: ONE statement, a data-modifying CTE per part, and a table behind the
    guards through ``compliance_erase_rows`` (all its rows of ``subject_ids``, under
    ``request_ids``: the part must select exactly those); elsewhere one statement per part."""
    if not is_postgresql(using):
        return [rows_delete(using=using, rows=rows) for rows in parts]
    ctes, selects, params = [], [], []
    quote = connections[using].ops.quote_name
    for i, rows in enumerate(parts):
        meta = rows.model._meta
        if is_guarded(rows.model):  # the guard function deletes, and counts
            ctes.append(
                f"p{i} AS (SELECT row_subject AS s, removed AS n FROM compliance_erase_rows("
                "%s, %s::uuid[], %s::uuid[], NULL::bigint[]))"
            )
            params.extend([meta.db_table, list(subject_ids), list(request_ids)])
            selects.append(f"SELECT {i}, s, n::bigint FROM p{i}")
            continue
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        ctes.append(
            f"p{i} AS (DELETE FROM {table} WHERE {pk} IN ({rows.sql}) "
            f"RETURNING {quote(rows.column)} AS s)"
        )
        params.extend(rows.params)
        selects.append(f"SELECT {i}, s, count(*) FROM p{i} GROUP BY s")
    found: list[Counter] = [Counter() for _ in parts]
    with connections[using].cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}", params)
        for i, sid, n in cursor.fetchall():
            found[i][as_uuid(sid)] += n
    return found


def rows_insert(
    *,
    using: str,
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    unique: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (values of the fields ``columns``) into ``model``'s table; a row that
    conflicts on ``unique`` updates ``update`` (none given: it is skipped). PostgreSQL: ONE
    ``INSERT ... SELECT`` from one array per column (no model instances); elsewhere
    ``bulk_create``."""
    if not rows:
        return
    if not is_postgresql(using):
        model._default_manager.using(using).bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows],
            ignore_conflicts=not update,
            update_conflicts=bool(update),
            unique_fields=list(unique) if update else None,
            update_fields=list(update) if update else None,
        )
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in columns]
    names = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    if update:
        updated = [quote(model._meta.get_field(c).column) for c in update]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
        target = ", ".join(quote(model._meta.get_field(c).column) for c in unique)
        conflict = f"ON CONFLICT ({target}) DO UPDATE SET {sets}"
    else:
        conflict = "ON CONFLICT DO NOTHING"
    values = [
        [f.get_db_prep_save(value, connection) for value in column]
        for f, column in zip(fields, zip(*rows, strict=True), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays}) "
            f"{conflict}",
            values,
        )


def rows_count(*, using: str, rows: Mapping[str, Rows]) -> dict[str, int]:
    """``{key: number of rows}`` for row sets of any models, in one statement."""
    if not rows:
        return {}
    keys = list(rows)
    parts, params = [], []
    for i, key in enumerate(keys):
        parts.append(f"SELECT {i}, COUNT(*) FROM ({rows[key].sql}) q{i}")
        params.extend(rows[key].params)
    with connections[using].cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        found = dict(cursor.fetchall())
    return {key: found.get(i, 0) for i, key in enumerate(keys)}


def instances_update(
    *,
    using: str,
    instances: Sequence[Model],
    fields: Sequence[str],
    shared: Sequence[str] = (),
) -> int:
    """Save ``fields`` of ``instances`` (one model) with ONE ``UPDATE ... FROM (VALUES ...)``:
    each row carries its own values; ``shared`` fields hold the same value on every instance
    (sent once, from the first). Returns the rows updated."""
    if not instances:
        return 0
    connection = connections[using]
    meta = type(instances[0])._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields if name not in shared)]
    constants = [meta.get_field(name) for name in shared]
    typed = connection.vendor == "postgresql"
    row = "({})".format(
        ", ".join(f"%s::{f.db_type(connection)}" if typed else "%s" for f in columns)
    )
    params = [
        f.get_db_prep_save(getattr(instance, f.attname), connection)
        for instance in instances
        for f in columns
    ]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    sets = ", ".join(
        [
            *(f"{quote(f.column)} = %s" for f in constants),
            *(f"{quote(f.column)} = v.column{i + 2}" for i, f in enumerate(columns[1:])),
        ]
    )
    params = [
        *(f.get_db_prep_save(getattr(instances[0], f.attname), connection) for f in constants),
        *params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(instances))}) AS v "
            f"WHERE {table}.{quote(meta.pk.column)} = v.column1",
            params,
        )
        return cursor.rowcount


def guarded_erase(
    *,
    using: str,
    model: type[Model],
    subject_ids: Sequence[UUID],
    request_ids: Sequence[UUID],
) -> Counter | None:
    """Rows per subject deleted from a table behind the PostgreSQL guards, through the guard
    function (``compliance_erase_rows``: one statement, no limit; refused unless every subject
    is covered by ``request_ids`` or the destroyed-keys ledger). ``None`` when ``model`` has
    no guard on this database: delete its rows like any table's."""
    if not (is_postgresql(using) and is_guarded(model)):
        return None
    removed = erase_rows(
        using=using,
        table=model._meta.db_table,
        subject_ids=subject_ids,
        request_ids=request_ids,
    )
    return Counter(removed)
