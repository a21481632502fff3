"""Retention of audit entries (category ``audit_entries``): the chain prefix up to a signed
checkpoint goes, in one transaction with the ``RETENTION_APPLIED`` entry that records it (see
``compliance.retention.services.enforce``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.verification import chain_verify, checkpoint_signature_valid
from compliance.audit.selectors.witness import witness_read
from compliance.conf import compliance_settings
from compliance.retention.services.run import RetentionRefused, RuleRun, run_audit
from compliance.retention.sql import audit_prefix_delete


def audit_prune_point(*, alias: str, cutoff: datetime) -> tuple[int, AuditCheckpoint] | None:
    """``(first present seq, checkpoint)``: the chain prefix that may go - up to the newest
    valid signed checkpoint whose entry is older than ``cutoff`` and, where a witness directory
    is configured, that the witness holds; ``None`` if nothing may."""
    witnessed = _witnessed(alias)

    entries = AuditEvent.objects.using(alias)
    first = entries.order_by("seq").values_list("seq", flat=True).first()
    newest_old = entries.filter(occurred_at__lt=cutoff).aggregate(top=Max("seq"))["top"]
    if first is None or newest_old is None:
        return None
    for checkpoint in (
        AuditCheckpoint.objects.using(alias)
        .filter(chain_id=alias, size__gte=first, size__lte=newest_old)
        .order_by("-size")
    ):
        entry = entries.filter(seq=checkpoint.size).values_list("hash", flat=True).first()
        if entry == checkpoint.head_hash and checkpoint_signature_valid(checkpoint):
            if witnessed is None or (checkpoint.size, checkpoint.head_hash) in witnessed:
                return first, checkpoint
    return None


def _witnessed(alias: str) -> set[tuple[int, str]] | None:
    """The (size, head hash) pairs the witness directory holds for ``alias``'s chain, or
    ``None`` when no witness directory is configured (an HTTP witness cannot be read back)."""
    root = compliance_settings.AUDIT_WITNESS_DIR
    if not root:
        return None
    log = witness_read(root=Path(root), chain_id=alias)
    return {(item.size, item.head_hash) for item in log.checkpoints}


def audit_entries_remove(run: RuleRun):
    point = audit_prune_point(alias=run.alias, cutoff=run.cutoff)
    if point is None:
        return {"audit.AuditEvent": 0}, {}
    first, checkpoint = point
    count = checkpoint.size - first + 1
    extra = {"pruned_through": checkpoint.size, "anchor_head_hash": checkpoint.head_hash}
    if run.dry_run:
        return {"audit.AuditEvent": count}, extra
    verified = chain_verify(using=run.alias)
    if not verified.ok:
        raise RetentionRefused(
            "the audit chain does not verify, so no prefix is dropped: "
            + verified.first_finding.describe(run.alias)
        )
    with transaction.atomic(using=run.alias):
        removed = audit_prefix_delete(
            alias=run.alias, first=first, through=checkpoint.size, batch=run.batch
        )
        run_audit(run, {"audit.AuditEvent": removed}, extra)
    return {"audit.AuditEvent": removed}, {**extra, "audited": True}
