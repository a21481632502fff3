"""The consent ledger folded: the latest event per (subject, purpose, scope), as it stood then.

The projection (``ConsentState``) is this fold stored; evaluation folds history itself only
when asked about a moment before a subject's latest state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from compliance.consent.models import ConsentEvent
from compliance.consent.rules import Record
from compliance.consent.sql import chunks


class LatestEvent(NamedTuple):
    """The latest event of one (subject, purpose, scope): what a state row holds."""

    event_id: int
    decision: str
    lawful_basis: str
    jurisdiction: str
    captured_at: datetime
    expires_at: datetime | None

    def order_key(self) -> tuple[datetime, int]:
        return (self.captured_at, self.event_id)

    def record(self) -> Record:
        """The shape the rules read."""
        expires = self.expires_at.timestamp() if self.expires_at else None
        return Record(
            self.event_id, self.decision, self.jurisdiction, self.captured_at.timestamp(), expires
        )


def history_records(
    *,
    alias: str,
    subject_ids: Iterable[UUID],
    purposes: Iterable[str] | None,
    scopes: Iterable[str] | None,
    at: datetime | None,
) -> dict[tuple[UUID, str, str], LatestEvent]:
    """Fold events captured up to ``at`` (all when None) into the latest per (subject id,
    purpose, scope key); the scope key is the source for source-scoped events, else ``""``.
    ``purposes``/``scopes`` None mean all of them."""
    ids = list(subject_ids)
    out: dict[tuple[UUID, str, str], LatestEvent] = {}
    for chunk in chunks(alias=alias, ids=ids):
        qs = ConsentEvent.objects.using(alias).filter(subject_id__in=chunk)
        if purposes is not None:
            qs = qs.filter(purpose__in=list(purposes))
        if at is not None:
            qs = qs.filter(captured_at__lte=at)
        rows = qs.order_by("captured_at", "id").values_list(
            "subject_id", "purpose", "source", "scope", "id", "decision", "lawful_basis",
            "jurisdiction", "captured_at", "expires_at",
        )  # fmt: skip
        for subject_id, purpose, source, scope, *latest in rows:
            scope_key = source if scope == "source" else ""
            if scopes is not None and scope_key not in scopes:
                continue
            out[(subject_id, purpose, scope_key)] = LatestEvent(*latest)
    return out
