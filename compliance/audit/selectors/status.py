"""Chain status for the admin and the report: size, head, last checkpoint, verified or not."""

from __future__ import annotations

from compliance.audit.hashing import GENESIS, format_time
from compliance.audit.models import AuditChainHead
from compliance.audit.selectors.verification import chain_verify


def chain_status(*, using: str, full: bool = False) -> dict:
    """Status of the chain of ``using``.

    Verifies from the last valid signed checkpoint to the head (``full``: from the genesis),
    so the cost is bounded by what was appended since the last checkpoint.
    """
    result = chain_verify(using=using, incremental=not full)
    head = AuditChainHead.objects.using(using).filter(chain_id=using).first()
    checkpoint = result.last_checkpoint
    first = result.first_finding
    return {
        "chain_id": using,
        "size": head.size if head else 0,
        "head_hash": head.head_hash if head else GENESIS,
        "checkpoint": (
            {
                "size": checkpoint.size,
                "head_hash": checkpoint.head_hash,
                "signed_at": format_time(checkpoint.signed_at),
                "key_id": checkpoint.key_id,
                "signature": checkpoint.signature,
            }
            if checkpoint
            else None
        ),
        "verified": result.ok,
        "verified_from": result.start_seq,
        "finding": first.describe(using) if first else "",
    }
