"""Fast, streaming reads of raw chain rows (no model instances), for verify and export.

Each row is a tuple in ``COLUMNS`` order, ``(seq, occurred_at, code, actor_type, actor_id,
subject_token, object_type, object_id, payload, hash)``, where ``occurred_at`` is already in the
canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` form and ``payload`` a dict. Streamed in constant
memory (``compliance.audit.sql.event_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator

from compliance.audit import sql
from compliance.audit.hashing import FIELDS

COLUMNS = (*FIELDS[1:], "hash")


def iter_rows(
    *, using: str, start_seq: int | None = None, end_seq: int | None = None, limit: int = 0
) -> Iterator[tuple]:
    """Rows of the chain of ``using`` with ``start_seq <= seq <= end_seq``, by seq, at most
    ``limit`` of them (0: all)."""
    return sql.event_rows(using=using, start_seq=start_seq, end_seq=end_seq, limit=limit)
