"""Re-applying the destroyed-keys ledger after a backup restore.

A restored region (or control) database may bring back rows of people erased after the backup
was taken. ``erasures_replay`` reads the ledger (``DestroyedKey``) and, for every subject in it,
suppresses the identifiers of any restored identity (in the region and in the control
database's mirror), removes the subject's control-directory rows (adding them to the mirror in
the same statement) and deletes its rows in every registered model (keys included); last, it
copies the region's whole suppression list into the mirror (a restored control database lacks
the rows of later erasures). Keep the ledger out of
the restored backup (export it with ``replay_erasures --export FILE`` and replay with
``--ledger FILE``) if the region database itself was restored to an older state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import DestroyedKey, PrivacyRequest
from compliance.dsar.sql import directory_delete_suppressing, guarded_erase
from compliance.models import Identity, Subject, Suppression
from compliance.personal_data import personal_data_models
from compliance.regions import region_alias
from compliance.services.suppressions import (
    suppressions_mirror_add,
    suppressions_mirror_backfill,
)

SYSTEM = Actor.system("replay-erasures")


def ledger_export(*, region: str, path: Path) -> int:
    """Write the region's ledger as JSON Lines; returns the number of entries."""
    rows = DestroyedKey.objects.using(region_alias(region=region)).order_by("destroyed_at")
    with path.open("w") as out:
        for row in rows:
            out.write(
                json.dumps(
                    {
                        "subject_id": str(row.subject_id),
                        "destroyed_at": row.destroyed_at.isoformat(),
                        "request_id": str(row.request_id) if row.request_id else None,
                    }
                )
                + "\n"
            )
    return rows.count()


def ledger_read(*, path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def erasures_replay(
    *, region: str, entries: Iterable[dict] | None = None, actor: Actor = SYSTEM
) -> dict[str, int]:
    """Erase again every ledger subject found in the restored databases; returns counts."""
    alias = region_alias(region=region)
    if entries is None:
        entries = DestroyedKey.objects.using(alias).values(
            "subject_id", "destroyed_at", "request_id"
        )
    totals = {"subjects": 0, "rows": 0, "directory_rows": 0, "suppressed": 0}
    for entry in entries:
        subject_id = UUID(str(entry["subject_id"]))
        removed = _replay_one(
            alias=alias, region=region, subject_id=subject_id, entry=entry, actor=actor
        )
        if any(removed.values()):
            totals["subjects"] += 1
        for key, value in removed.items():
            totals[key] += value
    # a restored control database lacks the mirror rows of later erasures: the region's
    # suppression list has them all
    totals["mirrored"] = suppressions_mirror_backfill(region=region)
    return totals


def _replay_one(
    *, alias: str, region: str, subject_id: UUID, entry: dict, actor: Actor
) -> dict[str, int]:
    removed = directory_delete_suppressing(subject_ids=[subject_id], at=timezone.now())
    directory_rows = sum(removed.values())
    with transaction.atomic(using=alias):
        subject = Subject.objects.using(alias).filter(pk=subject_id).first()
        identities = list(
            Identity.objects.using(alias)
            .filter(subject_id=subject_id)
            .values_list("blind_index", "identifier_type")
        )
        known = set(
            Suppression.objects.using(alias)
            .filter(blind_index__in=[i for i, _ in identities])
            .values_list("blind_index", flat=True)
        )
        new = [(i, t) for i, t in identities if i not in known]
        suppressions_mirror_add(region=region, blind_indexes=[i for i, _ in identities])
        request_id = entry.get("request_id")
        Suppression.objects.using(alias).bulk_create(
            [
                Suppression(
                    blind_index=i,
                    identifier_type=t,
                    reason="erasure",
                    request_id=UUID(str(request_id)) if request_id else None,
                )
                for i, t in new
            ]
        )
        # the ledger first: it is what vouches for the subject to the guards
        if not DestroyedKey.objects.using(alias).filter(subject_id=subject_id).exists():
            DestroyedKey.objects.using(alias).create(
                subject_id=subject_id,
                destroyed_at=entry["destroyed_at"],
                request_id=UUID(str(request_id)) if request_id else None,
            )
        rows = 0
        for model_entry in personal_data_models():
            # erasure notices (rows the registry retains) are kept, as the first erasure did
            qs = model_entry.erasable(using=alias, subject_ids=[subject_id])
            if model_entry.model is PrivacyRequest:
                rows += qs.update(subject_id=None, identifier_indexes=[])
                continue
            # guarded tables: the destroyed-keys ledger vouches for the subject
            guarded = guarded_erase(
                using=alias, model=model_entry.model, subject_ids=[subject_id], request_ids=[]
            )
            if guarded is not None:
                rows += sum(guarded.values())
            else:
                rows += qs.delete()[1].get(model_entry.label, 0)
        if rows or new:
            audit_append(
                using=alias,
                entries=[
                    AuditEntry(
                        code=AuditCode.SUBJECT_KEY_DESTROYED,
                        actor=actor,
                        subject_token=subject.audit_token if subject else "",
                        object_type="subject_key",
                        object_id=str(request_id or ""),
                        payload={"reason": "replay", "rows": rows, "suppressed": len(new)},
                    )
                ],
            )
    return {"rows": rows, "directory_rows": directory_rows, "suppressed": len(new)}


__all__ = ["erasures_replay", "ledger_export", "ledger_read"]
