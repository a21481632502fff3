"""The signed claims ``chain_verify`` checks the walk against: "entry ``size`` has hash
``head_hash``", from the checkpoint table, from the chain's own ``CHECKPOINT_SIGNED`` entries and
from the witness files; and what a stop at a claimed size means for each claim."""

from __future__ import annotations

from pathlib import Path

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.findings import ChainVerification, Finding, HeadClaim
from compliance.audit.selectors.witness import witness_read
from compliance.audit.signing import checkpoint_message, signature_valid


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    return statement_signature_valid(
        chain_id=checkpoint.chain_id,
        size=checkpoint.size,
        head_hash=checkpoint.head_hash,
        signed_at=format_time(checkpoint.signed_at),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )


def statement_signature_valid(
    *, chain_id: str, size: int, head_hash: str, signed_at: str, key_id: str, signature: str
) -> bool:
    """Whether ``signature`` is this key's Ed25519 signature of that checkpoint statement."""
    if key_id != crypto.key_id():
        return False
    message = checkpoint_message(
        chain_id=chain_id, size=size, head_hash=head_hash, signed_at=signed_at, key_id=key_id
    )
    return signature_valid(
        public_key=crypto.public_key(), message=message, signature_hex=str(signature)
    )


def checkpoint_statement(checkpoint: AuditCheckpoint) -> tuple:
    return (
        checkpoint.size,
        checkpoint.head_hash,
        format_time(checkpoint.signed_at),
        checkpoint.key_id,
        checkpoint.signature,
    )


def claim_add(claims: dict, claim: HeadClaim) -> None:
    claims.setdefault(claim.size, []).append(claim)


def differs(group: list[HeadClaim], stored: str) -> bool:
    return any(claim.head_hash != stored for claim in group)


def recorded_claims(
    result: ChainVerification, *, using: str, checkpoints: list, claims: dict, start: int
) -> list[Finding]:
    """Cross-check the ``CHECKPOINT_SIGNED`` entries from ``start`` on with the checkpoint
    table; a recorded checkpoint the table lacks (or holds altered) becomes a claim of its own
    when its signature (carried in the payload since v2 of the payload) is valid. Returns the
    ``checkpoint_missing`` findings (kept by the caller for entries the walk vouched for)."""
    by_pk = {str(c.pk): c for c in checkpoints}
    missing = []
    recorded = (
        AuditEvent.objects.using(using)
        .filter(code=AuditCode.CHECKPOINT_SIGNED, seq__gte=start)
        .order_by("seq")
        .values_list("seq", "object_id", "payload")
    )
    for seq, object_id, payload in recorded.iterator(chunk_size=5000):
        result.recorded += 1
        payload = payload if isinstance(payload, dict) else {}
        try:
            size, head_hash = int(payload["size"]), str(payload["head_hash"])
        except (KeyError, TypeError, ValueError):
            missing.append(Finding("checkpoint_missing", seq, "its payload names no checkpoint"))
            continue
        full = "signature" in payload and "signed_at" in payload
        statement = (
            size,
            head_hash,
            payload.get("signed_at"),
            payload.get("key_id"),
            payload.get("signature"),
        )
        table = by_pk.get(object_id)
        if table is not None and (
            checkpoint_statement(table) == statement
            if full
            else (table.size, table.head_hash, table.key_id) == statement[:2] + statement[3:4]
        ):
            continue  # the table holds it as recorded (its signature is checked with the table)
        state = "is missing from" if table is None else "differs from what is in"
        missing.append(
            Finding(
                "checkpoint_missing",
                seq,
                f"it records checkpoint {object_id} (size {size}, head {head_hash[:16]}..., "
                f"signed {payload.get('signed_at', '?')}), which {state} the checkpoint table",
            )
        )
        if full and not statement_signature_valid(
            chain_id=result.chain_id,
            size=size,
            head_hash=head_hash,
            signed_at=str(payload["signed_at"]),
            key_id=str(payload.get("key_id")),
            signature=str(payload["signature"]),
        ):
            missing.append(
                Finding(
                    "bad_signature",
                    seq,
                    f"the checkpoint it records (size {size}) has an invalid signature",
                )
            )
            continue
        claim_add(
            claims,
            HeadClaim(
                "chain", size, head_hash, f"checkpoint {object_id} (recorded by entry #{seq})"
            ),
        )
    return missing


def witnessed_claims(
    result: ChainVerification, *, root: Path, signed: set, claims: dict
) -> list[Finding]:
    """Add the witnessed checkpoints of this chain as claims; return the findings about the
    witness files themselves and the witnessed checkpoints the table does not hold."""
    log = witness_read(root=root, chain_id=result.chain_id)
    result.witnessed = len(log.checkpoints)
    findings = [Finding("witness_broken", size, problem) for size, problem in log.problems]
    for item in log.checkpoints:
        if item.key not in signed:
            if not statement_signature_valid(
                chain_id=result.chain_id,
                size=item.size,
                head_hash=item.head_hash,
                signed_at=item.signed_at,
                key_id=item.key_id,
                signature=item.signature,
            ):
                findings.append(
                    Finding(
                        "witness_broken",
                        item.size,
                        f"witness file {item.file} carries an invalid signature",
                    )
                )
                continue
            findings.append(
                Finding(
                    "checkpoint_missing",
                    item.size,
                    f"witness file {item.file} holds a checkpoint (size {item.size}, signed "
                    f"{item.signed_at}) that the checkpoint table does not",
                )
            )
        claim_add(
            claims, HeadClaim("witness", item.size, item.head_hash, f"witness file {item.file}")
        )
    result.findings.extend(f for f in findings if f.kind == "witness_broken")
    return [f for f in findings if f.kind != "witness_broken"]


_KIND = {"witness": "rewritten", "table": "checkpoint_mismatch", "chain": "checkpoint_mismatch"}


def head_findings(seq: int, stored: str, claims: dict) -> list[Finding]:
    """What a stop at ``seq`` (stored and recomputed hash ``stored``) means for each claim."""
    findings: list[Finding] = []
    for claim in sorted(claims.get(seq, []), key=lambda c: c.source != "witness"):
        if claim.head_hash == stored or any(f.kind == _KIND[claim.source] for f in findings):
            continue
        if claim.source == "witness":
            earlier = [
                s for s, g in claims.items() if s < seq and any(c.source == "witness" for c in g)
            ]
            since = (
                f"entries #{max(earlier) + 1}..#{seq} were rewritten (#{max(earlier)}, witnessed "
                "too, still matches)"
                if earlier
                else f"entries up to #{seq} were rewritten"
            )
            findings.append(
                Finding(
                    "rewritten",
                    seq,
                    f"its hash {stored[:16]}... is not the head {claim.head_hash[:16]}... that "
                    f"{claim.label} witnessed: {since}",
                )
            )
        else:
            findings.append(
                Finding(
                    "checkpoint_mismatch",
                    seq,
                    f"recomputed head at size {seq} differs from {claim.label} signed for that "
                    "size: entries up to here were rewritten",
                )
            )
    return findings
