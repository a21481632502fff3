"""Recompute a chain and check its signed checkpoints: what ``audit_verify`` reports.

The walk recomputes ``hash = SHA-256(prev || canonical(entry))`` from the genesis (or, in
incremental mode, from the last checkpoint whose signature is valid) and stops at the first
entry that does not fit. That entry is classified by looking at the few rows after it:

* ``removed``   - a gap in sequence numbers, or the next entries link to a predecessor that is
  gone (entries deleted and the rest renumbered);
* ``inserted``  - the entry is foreign and the genuine entry of that position follows it;
* ``reordered`` - the genuine entry of that position sits later in the log and this one is
  genuine elsewhere;
* ``modified``  - the entry's content changed (its successor still links to its stored hash),
  or its hash was rewritten;
* ``truncated`` - the log ends before the size a signed checkpoint (or the chain head) records;
* ``checkpoint_mismatch`` - the recomputed head at a checkpoint's size differs from the signed
  one (hashes were rewritten wholesale); ``bad_signature`` - a checkpoint's signature fails;
* ``checkpoint_missing`` - the chain's own ``CHECKPOINT_SIGNED`` entry (or the witness) records
  a signed checkpoint that the checkpoint table no longer holds as signed (deleted or altered);
  the entry number is the recording entry's (the checkpoint's size for a witnessed one).

Every signed head the verifier knows of is a claim "entry ``size`` has hash ``head_hash``": the
checkpoint table's, the ones the chain recorded in its ``CHECKPOINT_SIGNED`` entries (payload
``size``, ``head_hash``, ``signed_at``, ``key_id``, ``signature``; their signature is checked
when the table lacks them), and with ``witness=DIR`` the witness files (``claims``). The walk
(``walk``) compares the recomputed hash at each such size, so a rewrite with recomputed hashes
stops at the first claimed size after it. With a witness, also:

* ``rewritten`` - the entry at a witnessed size has another hash;
* ``truncated`` - the log ends before a witnessed size;
* ``wiped`` - the chain has no entries at all but the witness holds checkpoints of it;
* ``witness_broken`` - a witness file does not read, link to its predecessor, or carry a valid
  signature (the witness itself was tampered with).
"""

from __future__ import annotations

import time
from pathlib import Path

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import GENESIS
from compliance.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from compliance.audit.selectors.claims import (
    checkpoint_signature_valid,
    checkpoint_statement,
    claim_add,
    differs,
    head_findings,
    recorded_claims,
    witnessed_claims,
)
from compliance.audit.selectors.findings import (
    CONFLICT,
    ChainVerification,
    Finding,
    HeadClaim,
)
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.selectors.walk import chain_walk
from compliance.audit.services.append import chain_id_for

__all__ = ["ChainVerification", "Finding", "chain_verify", "checkpoint_signature_valid"]


def chain_verify(
    *, using: str, incremental: bool = False, witness: str | Path | None = None
) -> ChainVerification:
    """Verify the chain of database ``using``; ``incremental`` starts at the last valid checkpoint.

    Never raises for a damaged chain: the result lists findings (the first entry that does not
    fit, cut-offs, checkpoint mismatches, missing checkpoints, bad signatures). Cross-checks the
    chain's ``CHECKPOINT_SIGNED`` entries (from where the walk starts) against the checkpoint
    table; with ``witness`` (a witness directory) also every witnessed checkpoint of this chain.
    Streams rows in constant memory.
    """
    started = time.perf_counter()
    chain_id = chain_id_for(using=using)
    result = ChainVerification(chain_id=chain_id, using=using)
    head = AuditChainHead.objects.using(using).filter(chain_id=chain_id).first()
    result.head_size = head.size if head else 0
    checkpoints, valid = _signed_checkpoints(result, using=using, incremental=incremental)
    start = _start(result, using=using, valid=valid, incremental=incremental)
    if start is None:
        result.seconds = time.perf_counter() - started
        return result
    prev_hex, expected = start
    result.start_seq = expected
    claims: dict[int, list[HeadClaim]] = {}
    for checkpoint in valid:
        claim_add(
            claims,
            HeadClaim(
                "table",
                checkpoint.size,
                checkpoint.head_hash,
                f"checkpoint {checkpoint.pk}",
                checkpoint,
            ),
        )
    recorded = recorded_claims(
        result, using=using, checkpoints=checkpoints, claims=claims, start=expected
    )
    witnessed = []
    if witness is not None:
        began = time.perf_counter()
        signed = {checkpoint_statement(c) for c in valid}
        witnessed = witnessed_claims(result, root=Path(witness), signed=signed, claims=claims)
        result.witness_seconds = time.perf_counter() - began
    for size in [s for s in claims if s < expected]:
        if size == expected - 1 and size and differs(claims[size], prev_hex):
            result.findings.extend(head_findings(size, prev_hex, claims))
        del claims[size]  # pruned or before the incremental anchor: not walked
    heads = {
        size: (group[0].head_hash if len({c.head_hash for c in group}) == 1 else CONFLICT)
        for size, group in claims.items()
    }
    before = len(result.findings)
    chain_walk(
        result, using=using, prev_hex=prev_hex, expected=expected, heads=heads, claims=claims
    )
    walked_whole = len(result.findings) == before
    if walked_whole and not any(
        f.kind in {"checkpoint_mismatch", "rewritten"} for f in result.findings
    ):
        _check_end(result, claims=claims, head=head, using=using)
    if not any(f.kind == "wiped" for f in result.findings):
        # recorded ones only where the walk vouched for the recording entry
        result.findings.extend(f for f in recorded if f.seq <= result.last_seq)
        result.findings.extend(witnessed)
    result.findings.sort(key=lambda f: f.seq)  # stable: at one entry, the walk's finding first
    result.seconds = time.perf_counter() - started
    return result


def _signed_checkpoints(
    result: ChainVerification, *, using: str, incremental: bool
) -> tuple[list[AuditCheckpoint], list[AuditCheckpoint]]:
    """The checkpoints to consider and the valid ones among them; a ``bad_signature`` finding
    for each other one. ``incremental``: newest first, down to the newest valid one (the
    anchor): with a checkpoint a minute, checking every signature of the table each time would
    grow without bound."""
    table = AuditCheckpoint.objects.using(using).filter(chain_id=result.chain_id)
    if incremental:
        checkpoints = []
        for checkpoint in table.order_by("-size", "-id").iterator(chunk_size=100):
            checkpoints.insert(0, checkpoint)
            if checkpoint_signature_valid(checkpoint):
                break
        total = table.count()
    else:
        checkpoints = list(table)
        total = len(checkpoints)
    valid = []
    for checkpoint in checkpoints:
        if checkpoint_signature_valid(checkpoint):
            valid.append(checkpoint)
            continue
        result.findings.append(
            Finding(
                "bad_signature",
                checkpoint.size,
                f"checkpoint {checkpoint.pk} (size {checkpoint.size}, signed "
                f"{checkpoint.signed_at:%Y-%m-%d %H:%M:%S}) has an invalid signature",
            )
        )
    result.checkpoints = total
    result.last_checkpoint = valid[-1] if valid else None
    return checkpoints, valid


def _start(
    result: ChainVerification, *, using: str, valid: list, incremental: bool
) -> tuple[str, int] | None:
    """Where the walk starts: ``(hash before it, first seq)``: the genesis, the pruned prefix's
    checkpoint, or (``incremental``) the last valid checkpoint. ``None`` (and a
    ``checkpoint_mismatch`` finding) when that checkpoint's entry does not carry its hash."""
    prev_hex, expected = GENESIS, 1
    pruned = _pruned_anchor(using=using, valid=valid)
    if pruned is not None:
        prev_hex, expected = pruned.head_hash, pruned.size + 1
    if not (incremental and valid):
        return prev_hex, expected
    anchor = valid[-1]
    anchor_rows = list(iter_rows(using=using, start_seq=anchor.size, end_seq=anchor.size))
    if anchor is pruned:  # its entry was pruned; the signature vouches for its head
        anchor_rows = [(anchor.size, *([None] * 8), anchor.head_hash)]
    if not anchor_rows or anchor_rows[0][9] != anchor.head_hash:
        result.findings.append(
            Finding(
                "checkpoint_mismatch",
                anchor.size,
                f"entry #{anchor.size} does not carry the head hash signed in checkpoint "
                f"{anchor.pk}",
            )
        )
        return None
    return anchor.head_hash, anchor.size + 1


def _pruned_anchor(*, using: str, valid: list) -> AuditCheckpoint | None:
    """When retention dropped entries ``#1..#N``: the signed checkpoint of size ``N`` that
    anchors the rest, provided the chain records the prune (code 801, ``pruned_through`` N).
    ``None`` when nothing was pruned or the gap is not covered (then the walk reports it)."""
    first = AuditEvent.objects.using(using).order_by("seq").values_list("seq", flat=True).first()
    if first is None or first <= 1:
        return None
    anchor = next((c for c in valid if c.size == first - 1), None)
    if anchor is None:
        return None
    recorded = AuditEvent.objects.using(using).filter(
        code=AuditCode.RETENTION_APPLIED, seq__gt=anchor.size, payload__pruned_through=anchor.size
    )
    return anchor if recorded.exists() else None


def _check_end(result: ChainVerification, *, claims: dict, head, using: str) -> None:
    """After a whole walk: is the log shorter than any claimed size or the head, longer than
    the head, or gone altogether while the witness remembers it?"""
    last = result.last_seq
    beyond = [c for group in claims.values() for c in group if c.size > last]
    witnessed = [c for c in beyond if c.source == "witness"]
    if witnessed and result.entries == 0 and not AuditEvent.objects.using(using).exists():
        newest = max(witnessed, key=lambda c: c.size)
        result.findings.append(
            Finding(
                "wiped",
                1,
                f"the chain has no entries but the witness holds {result.witnessed} checkpoint(s) "
                f"of it, the newest ({newest.label}) at size {newest.size}",
            )
        )
        return
    if beyond:
        # the signed checkpoints of the table first (their pk names them), then the others
        claim = max(beyond, key=lambda c: (c.source == "table", c.size))
        if claim.source == "table":
            checkpoint = claim.checkpoint
            detail = (
                f"checkpoint {checkpoint.pk} signed {checkpoint.signed_at:%Y-%m-%d %H:%M:%S} "
                f"covers {checkpoint.size} entries"
            )
        else:
            detail = f"{claim.label} records a signed head at size {claim.size}"
        result.findings.append(
            Finding("truncated", last + 1, f"the log ends at #{last} but {detail}")
        )
    elif head is not None and head.size > last:
        result.findings.append(
            Finding(
                "truncated",
                last + 1,
                f"the log ends at #{last} but the chain head records {head.size} entries",
            )
        )
    elif head is not None and head.size < last:
        result.findings.append(
            Finding(
                "inserted",
                head.size + 1,
                f"entries after the chain head (size {head.size}) were added outside the "
                "append service",
            )
        )
    elif head is not None and last and head.head_hash != result.last_hash:
        result.findings.append(
            Finding("modified", last, "the chain head's hash differs from the last entry's")
        )
