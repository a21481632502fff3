"""The walk of ``chain_verify``: recompute every entry's hash from the one before and stop at the
first entry that does not fit, then name what happened to it.

Why it may run in parallel: entry ``n``'s hash is recomputed from entry ``n-1``'s STORED hash.
Up to the first entry that does not fit, the stored hashes equal the recomputed ones, so a chunk
``[lo, hi]`` can start from the stored hash of ``lo - 1`` without waiting for the chunks before
it. The results are then read in chunk order: the first chunk that reports anything holds the
first finding, exactly where a sequential walk would have stopped; a chunk that ends before its
upper bound means entries are missing there (or the log ends). How the rows are read, and
whether chunks may run in other processes, is ``compliance.audit.sql``'s business (PostgreSQL:
``COPY`` and up to ``PARALLEL_WORKERS`` processes; SQLite: one cursor).

Payloads are parsed with ``orjson`` when it is installed (an entry that does not fit is read
again with the standard library before it counts: ``orjson`` reads integers beyond 64 bits as
floats) and every entry is hashed by ``hashing.entry_hash``, as append hashed it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from functools import partial

from django.db.models import Max

from compliance.audit import sql
from compliance.audit.hashing import entry_hash
from compliance.audit.models import AuditEvent
from compliance.audit.selectors.claims import head_findings
from compliance.audit.selectors.findings import ChainVerification, Finding, removed
from compliance.audit.selectors.rows import iter_rows

try:  # optional accelerator: the same canonical bytes, about four times faster
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

#: from this many entries, the walk is split over ``PARALLEL_WORKERS`` processes (where
#: ``sql.scan_processes`` allows it)
PARALLEL_MIN = 100_000
PARALLEL_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: how many rows after a misfit entry are read to name what happened to it
WINDOW = 64


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


def chain_walk(
    result: ChainVerification,
    *,
    using: str,
    prev_hex: str,
    expected: int,
    heads: dict[int, str],
    claims: dict,
) -> None:
    """Recompute from ``expected`` (after ``prev_hex``); stop at the first entry that does not
    fit or whose hash is not the head claimed for its size (``heads``: size -> hash). Sets the
    result's ``entries``, ``last_seq`` and ``last_hash`` and adds the finding."""
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
            result.findings.append(removed(missing, seq))
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
            result.findings.extend(head_findings(seq, stored, claims))
            last_seq, last_hash = seq - 1, outcome[3]
            break
        if kind == "no_start":  # only after a chunk that ended early, which stops the loop
            raise RuntimeError(f"audit chain {chain_id}: chunk results out of order")
        last_seq, last_hash = outcome[2], outcome[3]
        if last_seq < hi:  # entries missing at the end of this chunk
            following = next(iter_rows(using=using, start_seq=last_seq + 1, limit=1), None)
            if following is not None:
                result.findings.append(removed(last_seq + 1, following[0]))
            break
    result.entries = count
    result.last_seq = last_seq
    result.last_hash = last_hash


def walk_ranges(
    *, using: str, chain_id: str, prev_hex: str, expected: int, heads: dict[int, str]
) -> tuple[list[tuple[int, int]], list[tuple]]:
    """Split ``expected..max(seq)`` into ranges and scan them (in parallel processes when
    large and the database allows it); returns the ranges and their ``scan`` results, in
    order."""
    last = AuditEvent.objects.using(using).filter(seq__gte=expected).aggregate(last=Max("seq"))
    last = last["last"]
    if last is None:
        return [], []
    total = last - expected + 1
    workers = sql.scan_processes(
        using=using, wanted=PARALLEL_WORKERS if total >= PARALLEL_MIN else 1
    )
    step = -(-total // workers)
    ranges = [(lo, min(lo + step - 1, last)) for lo in range(expected, last + 1, step)]
    scans = [
        partial(
            scan,
            chain_id=chain_id,
            lo=lo,
            prev_hex=prev_hex if index == 0 else None,
            heads={s: h for s, h in heads.items() if lo <= s <= hi},
        )
        for index, (lo, hi) in enumerate(ranges)
    ]
    spans = [(lo if index == 0 else lo - 1, hi) for index, (lo, hi) in enumerate(ranges)]
    return ranges, sql.ranges_scan(using=using, spans=spans, scans=scans)


def scan(rows: Iterator[Sequence], *, chain_id: str, lo: int, prev_hex: str | None, heads) -> tuple:
    """Verify the entries of ``rows`` from ``lo`` on (``prev_hex``: the hash before ``lo``;
    ``None``: the first row is entry ``lo - 1``, whose stored hash is taken). Returns one of

    * ``("ok", count, last_seq, last_hash)`` - every entry read fits (``last_seq`` may be below
      the range's end when entries are missing there);
    * ``("gap", count, expected, seq, last_hash)`` - entry ``expected`` is missing, ``seq``
      comes next;
    * ``("hash", count, seq, prev_hash)`` - entry ``seq`` does not fit after ``prev_hash``;
    * ``("checkpoint", count, seq, last_hash)`` - entry ``seq``'s hash is not the head signed
      for it;
    * ``("no_start", 0)`` - entry ``lo - 1`` is missing (the chunk before reports it).
    """
    loads, hashed = json.loads, entry_hash
    oloads = orjson.loads if orjson is not None else loads
    decode_error = orjson.JSONDecodeError if orjson is not None else ValueError
    expected, count = lo, 0
    if prev_hex is None:
        first = next(rows, None)
        if first is None or int(first[0]) != lo - 1:
            return ("no_start", 0)
        prev_hex = first[9]
    prev = bytes.fromhex(prev_hex)
    for seq, occurred, code, a_type, a_id, token, o_type, o_id, payload, stored in rows:
        seq = int(seq)
        try:
            value = oloads(payload)
        except decode_error:
            value = loads(payload)
        if seq != expected:
            return ("gap", count, expected, seq, prev.hex())
        while True:
            digest = hashed(
                prev=prev,
                chain_id=chain_id,
                seq=seq,
                occurred_at=occurred,
                code=int(code),
                actor_type=a_type,
                actor_id=a_id,
                subject_token=token,
                object_type=o_type,
                object_id=o_id,
                payload=value,
            )
            if digest.hex() == stored or payload is None or oloads is loads:
                break
            # orjson reads integers beyond 64 bits as floats: read it again before it counts
            value, payload = loads(payload), None
        if digest.hex() != stored:
            return ("hash", count, seq, prev.hex())
        head = heads.get(seq)
        if head is not None and head != stored:
            return ("checkpoint", count, seq, prev.hex())
        prev = digest
        expected += 1
        count += 1
    return ("ok", count, expected - 1, prev.hex())


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
