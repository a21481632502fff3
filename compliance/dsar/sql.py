"""The DSAR app's hand-written SQL, the one place that knows the database vendors apart.

Each statement serves a set-based step of the erasure engine: any number of rows in one round
trip, where the ORM would need one per row (or Django's ``bulk_update``, a ``CASE`` per column
and row). Both vendors run the same statements (SQLite >= 3.35: ``UPDATE ... FROM``,
``DELETE ... RETURNING``); PostgreSQL only needs the ``VALUES`` columns typed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from uuid import UUID

from django.db import connections
from django.db.models import Model, QuerySet

from compliance.db.vendor import is_postgresql
from compliance.db_guards import erase_rows, is_guarded


def as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _compiled(queryset: QuerySet, using: str) -> tuple[str, tuple]:
    """The SELECT of ``queryset`` as the database ``using`` would run it."""
    return queryset.query.get_compiler(using=using).as_sql()


def rows_delete(*, using: str, rows: QuerySet, column: str, limit: int) -> Counter:
    """Delete at most ``limit`` of ``rows`` in one statement; rows deleted per value of
    ``column`` (a subject id column)."""
    model = rows.model
    inner, params = _compiled(rows.order_by().values("pk")[:limit], using)
    connection = connections[using]
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {pk} IN ({inner}) RETURNING {quote(column)}", params
        )
        return Counter(as_uuid(value) for (value,) in cursor.fetchall())


def rows_count(*, using: str, querysets: Mapping[str, QuerySet]) -> dict[str, int]:
    """``{key: queryset.count()}`` for querysets of any models, in one statement."""
    if not querysets:
        return {}
    keys = list(querysets)
    parts, params = [], []
    for i, key in enumerate(keys):
        inner, inner_params = _compiled(querysets[key].order_by().values("pk"), using)
        parts.append(f"SELECT {i}, COUNT(*) FROM ({inner}) q{i}")
        params.extend(inner_params)
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
