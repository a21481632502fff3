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
  one (hashes were rewritten wholesale); ``bad_signature`` - a checkpoint's signature fails.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from django.db import connections

from compliance import crypto
from compliance.audit.hashing import GENESIS
from compliance.audit.models import AuditChainHead, AuditCheckpoint
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.services.append import chain_id_for
from compliance.audit.signing import checkpoint_message, signature_valid

WINDOW = 64
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_sha256 = hashlib.sha256


@dataclass(frozen=True)
class Finding:
    kind: str
    seq: int
    detail: str

    def describe(self, chain_id: str) -> str:
        return f"chain {chain_id}: entry #{self.seq} {self.kind}: {self.detail}"


@dataclass
class ChainVerification:
    chain_id: str
    using: str
    entries: int = 0
    start_seq: int = 1
    last_seq: int = 0
    last_hash: str = GENESIS
    head_size: int = 0
    checkpoints: int = 0
    last_checkpoint: AuditCheckpoint | None = None
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_finding(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.seq) if self.findings else None


def row_digest(prev: bytes, chain_id: str, row: tuple, seq: int | None = None) -> bytes:
    """Raw SHA-256 of ``row`` (a ``rows.iter_rows`` tuple) after ``prev`` (raw 32 bytes)."""
    canon = _encode(
        [
            chain_id,
            row[0] if seq is None else seq,
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            row[8],
        ]
    ).encode()
    return _sha256(prev + canon).digest()


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    from compliance.audit.hashing import format_time

    if checkpoint.key_id != crypto.key_id():
        return False
    message = checkpoint_message(
        chain_id=checkpoint.chain_id,
        size=checkpoint.size,
        head_hash=checkpoint.head_hash,
        signed_at=format_time(checkpoint.signed_at),
        key_id=checkpoint.key_id,
    )
    return signature_valid(
        public_key=crypto.public_key(), message=message, signature_hex=checkpoint.signature
    )


def chain_verify(*, using: str, incremental: bool = False) -> ChainVerification:
    """Verify the chain of database ``using``; ``incremental`` starts at the last valid checkpoint.

    Never raises for a damaged chain: the result lists findings (the first entry that does not
    fit, cut-offs, checkpoint mismatches, bad signatures). Streams rows in constant memory.
    """
    started = time.perf_counter()
    chain_id = chain_id_for(using=using)
    result = ChainVerification(chain_id=chain_id, using=using)
    head = AuditChainHead.objects.using(using).filter(chain_id=chain_id).first()
    result.head_size = head.size if head else 0
    checkpoints = list(AuditCheckpoint.objects.using(using).filter(chain_id=chain_id))
    valid = []
    for checkpoint in checkpoints:
        if checkpoint_signature_valid(checkpoint):
            valid.append(checkpoint)
        else:
            result.findings.append(
                Finding(
                    "bad_signature",
                    checkpoint.size,
                    f"checkpoint {checkpoint.pk} (size {checkpoint.size}, signed "
                    f"{checkpoint.signed_at:%Y-%m-%d %H:%M:%S}) has an invalid signature",
                )
            )
    result.checkpoints = len(checkpoints)
    result.last_checkpoint = valid[-1] if valid else None

    prev_hex, expected = GENESIS, 1
    pruned = _pruned_anchor(using=using, valid=valid)
    if pruned is not None:
        prev_hex, expected = pruned.head_hash, pruned.size + 1
    if incremental and valid:
        anchor = valid[-1]
        prev_hex, expected = anchor.head_hash, anchor.size + 1
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
            result.seconds = time.perf_counter() - started
            return result
    result.start_seq = expected
    by_size = {c.size: c for c in valid if c.size >= expected}
    _walk(result, using=using, prev_hex=prev_hex, expected=expected, by_size=by_size)

    if not any(f.kind != "bad_signature" for f in result.findings):
        _check_end(result, valid=valid, head=head)
    result.seconds = time.perf_counter() - started
    return result


def _pruned_anchor(*, using: str, valid: list) -> AuditCheckpoint | None:
    """When retention dropped entries ``#1..#N``: the signed checkpoint of size ``N`` that
    anchors the rest, provided the chain records the prune (code 801, ``pruned_through`` N).
    ``None`` when nothing was pruned or the gap is not covered (then the walk reports it)."""
    from compliance.audit.codes import AuditCode
    from compliance.audit.models import AuditEvent

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


def _walk(
    result: ChainVerification, *, using: str, prev_hex: str, expected: int, by_size: dict
) -> None:
    if connections[using].vendor == "postgresql":
        _walk_postgresql(result, using=using, prev_hex=prev_hex, expected=expected, by_size=by_size)
        return
    chain_id = result.chain_id
    prev = bytes.fromhex(prev_hex)
    count = 0
    for row in iter_rows(using=using, start_seq=expected):
        seq = row[0]
        if seq != expected:
            result.findings.append(
                Finding(
                    "removed",
                    expected,
                    f"entries #{expected}..#{seq - 1} are missing (next present entry is #{seq})"
                    if seq - 1 > expected
                    else f"entry #{expected} is missing (next present entry is #{seq})",
                )
            )
            break
        digest = _sha256(
            prev
            + _encode(
                [chain_id, seq, row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]]
            ).encode()
        ).digest()
        if digest.hex() != row[9]:
            result.findings.append(_classify(using=using, chain_id=chain_id, prev=prev, row=row))
            break
        checkpoint = by_size.get(seq)
        if checkpoint is not None and checkpoint.head_hash != row[9]:
            result.findings.append(
                Finding(
                    "checkpoint_mismatch",
                    seq,
                    f"recomputed head at size {seq} differs from checkpoint {checkpoint.pk} "
                    "signed for that size: entries up to here were rewritten",
                )
            )
            break
        prev = digest
        expected += 1
        count += 1
    result.entries = count
    result.last_seq = expected - 1
    result.last_hash = prev.hex()


def _walk_postgresql(
    result: ChainVerification, *, using: str, prev_hex: str, expected: int, by_size: dict
) -> None:
    """``_walk`` on PostgreSQL: COPY, chunks in parallel processes (``verification_fast``);
    the first chunk that reports anything holds the first finding."""
    from compliance.audit.selectors.verification_fast import walk_ranges

    chain_id = result.chain_id
    heads = {size: checkpoint.head_hash for size, checkpoint in by_size.items()}
    ranges, outcomes = walk_ranges(
        using=using, chain_id=chain_id, prev_hex=prev_hex, expected=expected, heads=heads
    )
    count, last_seq, last_hash = 0, expected - 1, prev_hex
    for (_lo, hi), outcome in zip(ranges, outcomes, strict=True):
        kind = outcome[0]
        count += outcome[1]
        if kind == "gap":
            missing, seq = outcome[2], outcome[3]
            result.findings.append(_removed(missing, seq))
            last_seq, last_hash = missing - 1, outcome[4]
            break
        if kind == "hash":
            seq, before = outcome[2], outcome[3]
            row = next(iter_rows(using=using, start_seq=seq, end_seq=seq))
            result.findings.append(
                _classify(using=using, chain_id=chain_id, prev=bytes.fromhex(before), row=row)
            )
            last_seq, last_hash = seq - 1, before
            break
        if kind == "checkpoint":
            seq = outcome[2]
            result.findings.append(
                Finding(
                    "checkpoint_mismatch",
                    seq,
                    f"recomputed head at size {seq} differs from checkpoint {by_size[seq].pk} "
                    "signed for that size: entries up to here were rewritten",
                )
            )
            last_seq, last_hash = seq - 1, outcome[3]
            break
        if kind == "no_start":  # only after a chunk that ended early, which stops the loop
            raise RuntimeError(f"audit chain {chain_id}: chunk results out of order")
        last_seq, last_hash = outcome[2], outcome[3]
        if last_seq < hi:  # entries missing at the end of this chunk
            following = next(iter_rows(using=using, start_seq=last_seq + 1, limit=1), None)
            if following is not None:
                result.findings.append(_removed(last_seq + 1, following[0]))
            break
    result.entries = count
    result.last_seq = last_seq
    result.last_hash = last_hash


def _removed(expected: int, seq: int) -> Finding:
    return Finding(
        "removed",
        expected,
        f"entries #{expected}..#{seq - 1} are missing (next present entry is #{seq})"
        if seq - 1 > expected
        else f"entry #{expected} is missing (next present entry is #{seq})",
    )


def _classify(*, using: str, chain_id: str, prev: bytes, row: tuple) -> Finding:
    seq = row[0]
    window = list(iter_rows(using=using, start_seq=seq + 1, limit=WINDOW))
    following = window[0] if window else None
    # modified: the successor still links to this entry's stored hash
    if following is not None and following[0] == seq + 1:
        if row_digest(bytes.fromhex(row[9]), chain_id, following).hex() == following[9]:
            return Finding("modified", seq, "its content does not match its hash")
    # the genuine entry of this position sits later: inserted or reordered
    for later in window:
        if row_digest(prev, chain_id, later, seq=seq).hex() == later[9]:
            if _genuine_elsewhere(prev, chain_id, row, window):
                return Finding(
                    "reordered",
                    seq,
                    f"it belongs elsewhere; the entry that belongs here is now at #{later[0]}",
                )
            return Finding(
                "inserted",
                seq,
                f"it is not part of the chain; the genuine entry #{seq} now sits at #{later[0]}",
            )
    # removed and renumbered: the successor links to this entry under a higher seq
    if following is not None:
        for gap in range(1, WINDOW):
            digest = row_digest(bytes.fromhex(row[9]), chain_id, following, seq=seq + 1 + gap)
            if digest.hex() == following[9]:
                return Finding(
                    "removed",
                    seq,
                    f"{gap} entr{'y' if gap == 1 else 'ies'} before it were removed and later "
                    "entries renumbered",
                )
    return Finding("modified", seq, "its content or its hash was changed")


def _genuine_elsewhere(prev: bytes, chain_id: str, row: tuple, window: list) -> bool:
    predecessors = [prev] + [bytes.fromhex(w[9]) for w in window]
    for candidate in window:
        for before in predecessors:
            if row_digest(before, chain_id, row, seq=candidate[0]).hex() == row[9]:
                return True
    return False


def _check_end(result: ChainVerification, *, valid: list, head) -> None:
    last = result.last_seq
    beyond = [c for c in valid if c.size > last]
    if beyond:
        checkpoint = max(beyond, key=lambda c: c.size)
        result.findings.append(
            Finding(
                "truncated",
                last + 1,
                f"the log ends at #{last} but checkpoint {checkpoint.pk} signed "
                f"{checkpoint.signed_at:%Y-%m-%d %H:%M:%S} covers {checkpoint.size} entries",
            )
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
