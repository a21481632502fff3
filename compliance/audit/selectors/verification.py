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
when the table lacks them), and with ``witness=DIR`` the witness files. Both walks (this module's
and ``verification_fast``) compare the recomputed hash at each such size, so a rewrite with
recomputed hashes stops at the first claimed size after it. With a witness, also:

* ``rewritten`` - the entry at a witnessed size has another hash;
* ``truncated`` - the log ends before a witnessed size;
* ``wiped`` - the chain has no entries at all but the witness holds checkpoints of it;
* ``witness_broken`` - a witness file does not read, link to its predecessor, or carry a valid
  signature (the witness itself was tampered with).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections

from compliance import crypto
from compliance.audit.codes import AuditCode
from compliance.audit.hashing import GENESIS, entry_hash, format_time
from compliance.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.services.append import chain_id_for
from compliance.audit.signing import checkpoint_message, signature_valid

WINDOW = 64
#: a head no entry can have: two claims disagree about one size, so the walk must stop there
CONFLICT = ""


@dataclass(frozen=True)
class Finding:
    kind: str
    seq: int
    detail: str

    def describe(self, chain_id: str) -> str:
        return f"chain {chain_id}: entry #{self.seq} {self.kind}: {self.detail}"


@dataclass(frozen=True)
class HeadClaim:
    """A signed statement that entry ``size`` has hash ``head_hash``; ``source`` is ``table``,
    ``chain`` (recorded by a ``CHECKPOINT_SIGNED`` entry) or ``witness``."""

    source: str
    size: int
    head_hash: str
    label: str
    checkpoint: AuditCheckpoint | None = None


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
    recorded: int = 0
    witnessed: int | None = None
    witness_seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_finding(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.seq) if self.findings else None


def row_digest(prev: bytes, chain_id: str, row: tuple, seq: int | None = None) -> bytes:
    """Raw SHA-256 of ``row`` (a ``rows.iter_rows`` tuple) after ``prev`` (raw 32 bytes), as
    entry ``seq`` (default: the row's own)."""
    return entry_hash(
        prev=prev,
        chain_id=chain_id,
        seq=row[0] if seq is None else seq,
        occurred_at=row[1],
        code=row[2],
        actor_type=row[3],
        actor_id=row[4],
        subject_token=row[5],
        object_type=row[6],
        object_id=row[7],
        payload=row[8],
    )


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


def _statement(checkpoint: AuditCheckpoint) -> tuple:
    return (
        checkpoint.size,
        checkpoint.head_hash,
        format_time(checkpoint.signed_at),
        checkpoint.key_id,
        checkpoint.signature,
    )


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
    table = AuditCheckpoint.objects.using(using).filter(chain_id=chain_id)
    if incremental:
        # newest first, down to the newest valid one (the anchor): with a checkpoint a minute,
        # checking every signature of the table each time would grow without bound
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
        else:
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
    claims: dict[int, list[HeadClaim]] = {}
    for checkpoint in valid:
        _claim(
            claims,
            HeadClaim(
                "table",
                checkpoint.size,
                checkpoint.head_hash,
                f"checkpoint {checkpoint.pk}",
                checkpoint,
            ),
        )
    signed = {_statement(c) for c in valid}
    recorded = _recorded(
        result, using=using, checkpoints=checkpoints, claims=claims, start=expected
    )
    witnessed = []
    if witness is not None:
        began = time.perf_counter()
        witnessed = _witnessed(result, root=Path(witness), signed=signed, claims=claims)
        result.witness_seconds = time.perf_counter() - began
    for size in [s for s in claims if s < expected]:
        if size == expected - 1 and size and _differs(claims[size], prev_hex):
            result.findings.extend(_head_findings(size, prev_hex, claims))
        del claims[size]  # pruned or before the incremental anchor: not walked
    heads = {
        size: (group[0].head_hash if len({c.head_hash for c in group}) == 1 else CONFLICT)
        for size, group in claims.items()
    }
    before = len(result.findings)
    _walk(result, using=using, prev_hex=prev_hex, expected=expected, heads=heads, claims=claims)
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


def _claim(claims: dict, claim: HeadClaim) -> None:
    claims.setdefault(claim.size, []).append(claim)


def _differs(group: list[HeadClaim], stored: str) -> bool:
    return any(claim.head_hash != stored for claim in group)


def _recorded(
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
            _statement(table) == statement
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
        _claim(
            claims,
            HeadClaim(
                "chain", size, head_hash, f"checkpoint {object_id} (recorded by entry #{seq})"
            ),
        )
    return missing


def _witnessed(
    result: ChainVerification, *, root: Path, signed: set, claims: dict
) -> list[Finding]:
    """Add the witnessed checkpoints of this chain as claims; return the findings about the
    witness files themselves and the witnessed checkpoints the table does not hold."""
    from compliance.audit.selectors.witness import witness_read

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
        _claim(claims, HeadClaim("witness", item.size, item.head_hash, f"witness file {item.file}"))
    result.findings.extend(f for f in findings if f.kind == "witness_broken")
    return [f for f in findings if f.kind != "witness_broken"]


_KIND = {"witness": "rewritten", "table": "checkpoint_mismatch", "chain": "checkpoint_mismatch"}


def _head_findings(seq: int, stored: str, claims: dict) -> list[Finding]:
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
    result: ChainVerification,
    *,
    using: str,
    prev_hex: str,
    expected: int,
    heads: dict[int, str],
    claims: dict,
) -> None:
    """Recompute from ``expected`` (after ``prev_hex``); stop at the first entry that does not
    fit or whose hash is not the head claimed for its size (``heads``: size -> hash)."""
    if connections[using].vendor == "postgresql":
        _walk_postgresql(
            result, using=using, prev_hex=prev_hex, expected=expected, heads=heads, claims=claims
        )
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
        digest = row_digest(prev, chain_id, row)
        if digest.hex() != row[9]:
            result.findings.append(_classify(using=using, chain_id=chain_id, prev=prev, row=row))
            break
        head = heads.get(seq)
        if head is not None and head != row[9]:
            result.findings.extend(_head_findings(seq, row[9], claims))
            break
        prev = digest
        expected += 1
        count += 1
    result.entries = count
    result.last_seq = expected - 1
    result.last_hash = prev.hex()


def _walk_postgresql(
    result: ChainVerification,
    *,
    using: str,
    prev_hex: str,
    expected: int,
    heads: dict[int, str],
    claims: dict,
) -> None:
    """``_walk`` on PostgreSQL: COPY, chunks in parallel processes (``verification_fast``);
    the first chunk that reports anything holds the first finding."""
    from compliance.audit.selectors.verification_fast import walk_ranges

    chain_id = result.chain_id
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
            stored = next(iter_rows(using=using, start_seq=seq, end_seq=seq))[9]
            result.findings.extend(_head_findings(seq, stored, claims))
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
