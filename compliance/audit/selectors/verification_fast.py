"""The PostgreSQL walk of ``chain_verify``: ``COPY ... TO STDOUT``, a tight loop, and chunks
verified in parallel processes. Same answers as the generic walk in ``verification``.

Why it may run in parallel: entry ``n``'s hash is recomputed from entry ``n-1``'s STORED hash.
Up to the first entry that does not fit, the stored hashes equal the recomputed ones, so a chunk
``[lo, hi]`` can start from the stored hash of ``lo - 1`` without waiting for the chunks before
it. The results are then read in chunk order: the first chunk that reports anything holds the
first finding, exactly where the sequential walk would have stopped; a chunk that ends before
its upper bound means entries are missing there (or the log ends).

Rows travel in COPY's text format and are split by hand; a row whose text holds a backslash
(COPY escapes, JSON escapes in the payload, NULL) takes the generic per-row path. Payloads are
parsed with ``orjson`` when it is installed (an entry that does not fit is read again with the
standard library before it counts: ``orjson`` reads integers beyond 64 bits as floats) and every
entry is hashed by ``hashing.entry_hash``, as append hashed it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Iterator

import psycopg
from django.db import connections

from compliance.audit.hashing import entry_hash
from compliance.audit.selectors.rows import _PG_TIME

try:  # optional accelerator: the same canonical bytes, about four times faster
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

#: from this many entries, the walk is split over ``PARALLEL_WORKERS`` processes
PARALLEL_MIN = 100_000
PARALLEL_WORKERS = max(1, min(4, os.cpu_count() or 1))
_LINES = 2000
_COPY_ESCAPES = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_sql(lo: int, hi: int) -> str:
    return (
        f"COPY (SELECT seq, {_PG_TIME}, code, actor_type, actor_id, subject_token, object_type, "
        f"object_id, payload, hash FROM audit_auditevent WHERE seq >= {int(lo)} "
        f"AND seq <= {int(hi)} ORDER BY seq) TO STDOUT"
    )


def _unescape(field: str):
    if field == "\\N":
        return None

    def one(match: re.Match) -> str:
        octal, hexa, char = match.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _SIMPLE_ESCAPES.get(char, char)

    return _COPY_ESCAPES.sub(one, field)


def _generic_row(line: str) -> tuple:
    """A COPY text line as an ``iter_rows`` tuple (escapes decoded, payload parsed)."""
    f = [_unescape(part) for part in line.split("\t")]
    payload = json.loads(f[8]) if f[8] is not None else None
    return (int(f[0]), f[1], int(f[2]), f[3], f[4], f[5], f[6], f[7], payload, f[9])


def _lines(copy) -> Iterator[str]:
    """The text lines of a COPY TO STDOUT, whatever the message boundaries."""
    pending = b""
    batch: list = []
    for data in copy:
        batch.append(data)
        if len(batch) == _LINES:
            blob = pending + b"".join(batch)
            batch.clear()
            cut = blob.rfind(b"\n") + 1
            pending = blob[cut:]
            yield from blob[:cut].decode().split("\n")[:-1]
    blob = pending + b"".join(batch)
    if blob:
        yield from blob.decode().rstrip("\n").split("\n")


def verify_range(
    *,
    connection,
    chain_id: str,
    lo: int,
    hi: int,
    prev_hex: str | None,
    heads: dict[int, str],
) -> tuple:
    """Verify entries ``lo..hi`` (``prev_hex``: the hash before ``lo``; ``None``: take the
    stored hash of entry ``lo - 1``, read first). Returns one of

    * ``("ok", count, last_seq, last_hash)`` - every entry read fits (``last_seq`` may be below
      ``hi`` when entries are missing at the end of the range);
    * ``("gap", count, expected, seq, last_hash)`` - entry ``expected`` is missing, ``seq``
      comes next;
    * ``("hash", count, seq, prev_hash)`` - entry ``seq`` does not fit after ``prev_hash``;
    * ``("checkpoint", count, seq, last_hash)`` - entry ``seq``'s hash is not the head signed
      for it;
    * ``("no_start", 0)`` - entry ``lo - 1`` is missing (the chunk before reports it).
    """
    start = lo if prev_hex is not None else lo - 1
    with connection.cursor() as cursor, cursor.copy(_copy_sql(start, hi)) as copy:
        result = _scan(_lines(copy), chain_id=chain_id, lo=lo, prev_hex=prev_hex, heads=heads)
        for _ in copy:  # stopped early: read the rest, so that the connection stays usable
            pass
    return result


def _scan(lines: Iterator[str], *, chain_id: str, lo: int, prev_hex: str | None, heads) -> tuple:
    loads, hashed = json.loads, entry_hash
    oloads = orjson.loads if orjson is not None else loads
    decode_error = orjson.JSONDecodeError if orjson is not None else ValueError
    expected, count = lo, 0
    if prev_hex is None:
        first = next(lines, None)
        if first is None or int(first.split("\t", 1)[0]) != lo - 1:
            return ("no_start", 0)
        prev_hex = first.rsplit("\t", 1)[1]
    prev = bytes.fromhex(prev_hex)
    for line in lines:
        payload = None
        if "\\" in line:
            row = _generic_row(line)
            seq, occurred, code, a_type, a_id, token, o_type, o_id, value, stored = row
        else:
            seq_s, occurred, code_s, a_type, a_id, token, o_type, o_id, payload, stored = (
                line.split("\t")
            )
            seq, code = int(seq_s), int(code_s)
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
                code=code,
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


def _conninfo(using: str) -> dict:
    settings = connections[using].settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "host": settings.get("HOST") or None,
        "port": settings.get("PORT") or None,
    }
    options = dict(settings.get("OPTIONS") or {})
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options"):
        if key in options:
            params[key] = options[key]
    return {k: v for k, v in params.items() if v is not None}


def _verify_in_child(conninfo: dict, kwargs: dict) -> tuple:
    with psycopg.connect(**conninfo) as connection:
        with connection.transaction():
            return verify_range(connection=connection, **kwargs)


def walk_ranges(
    *, using: str, chain_id: str, prev_hex: str, expected: int, heads: dict[int, str]
) -> tuple[list[tuple[int, int]], list[tuple]]:
    """Split ``expected..max(seq)`` into ranges and verify them (in parallel processes when
    large); returns the ranges and their ``verify_range`` results, in order."""
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("SELECT max(seq) FROM audit_auditevent WHERE seq >= %s", [expected])
        last = cursor.fetchone()[0]
    if last is None:
        return [], []
    total = last - expected + 1
    workers = PARALLEL_WORKERS if total >= PARALLEL_MIN else 1
    if connection.in_atomic_block:
        workers = 1  # other processes would not see this transaction's rows
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        workers = 1
    step = -(-total // workers)
    ranges = [(lo, min(lo + step - 1, last)) for lo in range(expected, last + 1, step)]
    jobs = [
        {
            "chain_id": chain_id,
            "lo": lo,
            "hi": hi,
            "prev_hex": prev_hex if index == 0 else None,
            "heads": {s: h for s, h in heads.items() if lo <= s <= hi},
        }
        for index, (lo, hi) in enumerate(ranges)
    ]
    if len(jobs) == 1:
        return ranges, [verify_range(connection=raw, **jobs[0])]
    conninfo = _conninfo(using)
    # fork: the children inherit the loaded code and exit with os._exit, never touching the
    # parent's connections; each opens its own
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        results = pool.starmap(_verify_in_child, [(conninfo, job) for job in jobs])
    return ranges, results
