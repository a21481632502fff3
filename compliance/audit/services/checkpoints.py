"""Signing checkpoints: "chain X had N entries with head H", Ed25519, key from settings.

Each checkpoint is recorded three times: the checkpoint table, the chain itself (a
``CHECKPOINT_SIGNED`` entry whose payload carries the whole signed statement, so the chain alone
can vouch for it) and the witness outside the database (``services.witness``), written once the
checkpoint is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import Actor, AuditEntry, audit_append, chain_id_for
from compliance.audit.services.witness import checkpoint_document, witness_latest, witness_record
from compliance.audit.signing import checkpoint_message
from compliance.conf import compliance_settings
from compliance.errors import InternalError


class ChainDamagedError(InternalError):
    """The chain does not verify; a checkpoint would bless the damage, so none is signed."""


def checkpoint_sign(
    *, using: str, actor: Actor | None = None, force: bool = False
) -> AuditCheckpoint | None:
    """Verify the chain of ``using`` since the last valid checkpoint, then sign its head.

    The signed head is the one just verified (entries appended meanwhile wait for the next
    checkpoint), so no lock is held while verifying. Writes ``CHECKPOINT_SIGNED`` after the
    checkpoint (payload: ``size``, ``head_hash``, ``signed_at``, ``key_id``, ``signature``) and,
    once committed, writes it to the witness (``WitnessError`` if a configured witness refuses
    it; the checkpoint stays). Returns ``None`` (nothing signed) when the chain is empty, or when
    nothing but the previous ``CHECKPOINT_SIGNED`` entry was appended since the last checkpoint,
    unless ``force``; an idle chain whose last checkpoint is not the witness's newest gets it
    witnessed then (a witness that was down catches up). Raises ``ChainDamagedError`` when
    verification finds anything.
    """
    chain_id = chain_id_for(using=using)
    result = chain_verify(using=using, incremental=True)
    if not result.ok:
        raise ChainDamagedError(result.first_finding.describe(chain_id))
    size, head_hash = result.last_seq, result.last_hash
    last = result.last_checkpoint
    if size == 0:
        return None
    if not force and last is not None:
        idle = last.size == size
        if last.size == size - 1:
            newest = AuditEvent.objects.using(using).filter(seq=size).values("code").first()
            idle = bool(newest and newest["code"] == AuditCode.CHECKPOINT_SIGNED)
        if idle:
            witness_catch_up(checkpoint=last)
            return None
    signed_at = timezone.now()
    key = crypto.key_id()
    message = checkpoint_message(
        chain_id=chain_id,
        size=size,
        head_hash=head_hash,
        signed_at=format_time(signed_at),
        key_id=key,
    )
    signature = crypto.sign(message=message).hex()
    with transaction.atomic(using=using):
        checkpoint = AuditCheckpoint.objects.using(using).create(
            chain_id=chain_id,
            size=size,
            head_hash=head_hash,
            signed_at=signed_at,
            key_id=key,
            signature=signature,
        )
        audit_append(
            using=using,
            entries=[
                AuditEntry(
                    code=AuditCode.CHECKPOINT_SIGNED,
                    actor=actor or Actor.system("checkpoint"),
                    object_type="audit_checkpoint",
                    object_id=str(checkpoint.pk),
                    payload={
                        "size": size,
                        "head_hash": head_hash,
                        "signed_at": format_time(checkpoint.signed_at),
                        "key_id": key,
                        "signature": signature,
                    },
                )
            ],
        )
        transaction.on_commit(lambda: witness_record(checkpoint=checkpoint), using=using)
    return checkpoint


def witness_catch_up(*, checkpoint: AuditCheckpoint) -> None:
    """Witness ``checkpoint`` unless the witness directory's newest file of its chain already
    holds it (with no witness directory: nothing to compare, nothing is sent again)."""
    root = compliance_settings.AUDIT_WITNESS_DIR
    if not root:
        return
    latest = witness_latest(root=Path(root), chain_id=checkpoint.chain_id)
    if latest is not None:
        document = json.loads(latest.data)
        if all(document.get(k) == v for k, v in checkpoint_document(checkpoint).items()):
            return
    witness_record(checkpoint=checkpoint)
