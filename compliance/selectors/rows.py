"""The hot paths' row reads, as hand-written SQL through ``Model.objects.raw``: directory
entries by blind index, a subject by id (a subject's consent state rows likewise, in
``consent.selectors.subjects``); where no instance is needed, plain rows from a cursor
(``directory_subjects``, which an event batch sends through ``compliance.db.batch`` so that
it is prepared once per connection on PostgreSQL, whatever the number of indexes asked).

Every consent, event, look-up and DSAR request runs them. The ORM spends about 0.2 ms building
each of these statements, more than the round trip itself (``python -m bench api``); a raw
query answers the same model instances (the fields' converters still apply) without it. The SQL
is the same on PostgreSQL and SQLite; the columns come from the models, so they follow the
schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db import connections

from compliance.db.arrays import array_literal
from compliance.db.batch import statements_run
from compliance.db.vendor import is_postgresql
from compliance.models import Subject, SubjectDirectory


def columns(model) -> str:
    """The model's columns, comma-separated, as a raw query selects them."""
    return ", ".join(field.column for field in model._meta.concrete_fields)


_DIRECTORY_SQL = (
    f"SELECT {columns(SubjectDirectory)} FROM {SubjectDirectory._meta.db_table} "
    "WHERE blind_index IN ({marks})"
)
#: ``{among}``: on PostgreSQL the indexes as one ``text[]`` parameter (one statement text for
#: any count, as ``compliance.events.sql`` asks for subjects), elsewhere one mark each
_PAIRS_SQL = (
    f"SELECT blind_index, region, subject_id FROM {SubjectDirectory._meta.db_table} "
    "WHERE blind_index {among}"
)
_SUBJECT_SQL = f"SELECT {columns(Subject)} FROM {Subject._meta.db_table} WHERE id = %s"


def directory_entries(*, blind_indexes: Iterable[str]) -> dict[str, SubjectDirectory]:
    """The control database's entries of those ``blind_indexes`` that have one, by blind index
    (one query; none for no index)."""
    wanted = list(dict.fromkeys(blind_indexes))
    if not wanted:
        return {}
    sql = _DIRECTORY_SQL.format(marks=", ".join(["%s"] * len(wanted)))
    return {entry.blind_index: entry for entry in SubjectDirectory.objects.raw(sql, wanted)}


def directory_subjects(*, blind_indexes: Iterable[str]) -> dict[str, tuple[str, UUID]]:
    """``directory_entries`` as ``blind index -> (region, subject id)``: plain rows, no model
    instance (an event batch asks for ten at a time, on every batch)."""
    wanted = list(dict.fromkeys(blind_indexes))
    if not wanted:
        return {}
    alias = SubjectDirectory.objects.db
    if is_postgresql(alias):
        among, params = "= ANY(%s::text[])", [array_literal(wanted)]
    else:
        among, params = f"IN ({', '.join(['%s'] * len(wanted))})", wanted
    (rows,) = statements_run(using=alias, statements=[(_PAIRS_SQL.format(among=among), params)])
    return {
        index: (region, sid if isinstance(sid, UUID) else UUID(sid)) for index, region, sid in rows
    }


def subject_row(*, alias: str, subject_id: UUID, for_update: bool = False) -> Subject | None:
    """The subject row ``subject_id`` of the region database ``alias``, or ``None``; with
    ``for_update`` its row lock is taken (where the database has row locks)."""
    connection = connections[alias]
    sql = _SUBJECT_SQL
    if for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    key = Subject._meta.pk.get_db_prep_value(subject_id, connection)
    found = list(Subject.objects.using(alias).raw(sql, [key]))
    return found[0] if found else None
