"""Signing checkpoints: "chain X had N entries with head H", Ed25519, key from settings."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.services.append import Actor, AuditEntry, audit_append, chain_id_for
from compliance.audit.signing import checkpoint_message


class ChainDamagedError(RuntimeError):
    """The chain does not verify; a checkpoint would bless the damage, so none is signed."""


def checkpoint_sign(
    *, using: str, actor: Actor | None = None, force: bool = False
) -> AuditCheckpoint | None:
    """Verify the chain of ``using`` since the last valid checkpoint, then sign its head.

    The signed head is the one just verified (entries appended meanwhile wait for the next
    checkpoint), so no lock is held while verifying. Writes ``CHECKPOINT_SIGNED`` after the
    checkpoint. Returns ``None`` (nothing signed) when the chain is empty, or when nothing but
    the previous ``CHECKPOINT_SIGNED`` entry was appended since the last checkpoint, unless
    ``force``. Raises ``ChainDamagedError`` when verification finds anything.
    """
    from compliance.audit.selectors.verification import chain_verify

    chain_id = chain_id_for(using=using)
    result = chain_verify(using=using, incremental=True)
    if not result.ok:
        raise ChainDamagedError(result.first_finding.describe(chain_id))
    size, head_hash = result.last_seq, result.last_hash
    last = result.last_checkpoint
    if size == 0:
        return None
    if not force and last is not None:
        if last.size == size:
            return None
        if last.size == size - 1:
            newest = AuditEvent.objects.using(using).filter(seq=size).values("code").first()
            if newest and newest["code"] == AuditCode.CHECKPOINT_SIGNED:
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
    with transaction.atomic(using=using):
        checkpoint = AuditCheckpoint.objects.using(using).create(
            chain_id=chain_id,
            size=size,
            head_hash=head_hash,
            signed_at=signed_at,
            key_id=key,
            signature=crypto.sign(message=message).hex(),
        )
        audit_append(
            using=using,
            entries=[
                AuditEntry(
                    code=AuditCode.CHECKPOINT_SIGNED,
                    actor=actor or Actor.system("checkpoint"),
                    object_type="audit_checkpoint",
                    object_id=str(checkpoint.pk),
                    payload={"size": size, "head_hash": head_hash, "key_id": key},
                )
            ],
        )
    return checkpoint
