"""TC string bits: base64url segments to a bit string, and the primitives that read it.

The TCF v2 layout itself (which field comes where) is ``compliance.consent.tcf``'s; this module
knows only the encoding: big-endian integers, booleans, bitfields of 1-based ids, two-letter
codes, deciseconds since the epoch, and the range-encoded id lists with their bound on how many
ids a hostile string may expand to. Every failure is a ``TCFDecodeError`` whose message names
the segment and never echoes more than a short prefix of the input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from compliance.errors import InputError

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_BITS = {ch: format(i, "06b") for i, ch in enumerate(_B64URL)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Upper bound on vendor ids expanded from range entries across one string: a short hostile
# string could otherwise expand to millions of ids (CPU/memory exhaustion).
_MAX_EXPANDED_IDS = 1_000_000
_PREFIX_LEN = 12


class TCFDecodeError(InputError):
    """The TC string cannot be decoded at all; the message says why."""

    code, field = "undecodable", "tc_string"


class Budget:
    """Counts vendor ids expanded from range entries to bound work on hostile input."""

    def __init__(self) -> None:
        self.remaining = _MAX_EXPANDED_IDS

    def spend(self, n: int) -> None:
        self.remaining -= n
        if self.remaining < 0:
            raise TCFDecodeError(f"range entries expand to more than {_MAX_EXPANDED_IDS} ids")


class BitReader:
    """Sequential big-endian reader over a '0'/'1' string."""

    def __init__(self, bits: str, name: str) -> None:
        self.bits = bits
        self.pos = 0
        self.name = name

    def read_int(self, n: int) -> int:
        end = self.pos + n
        if end > len(self.bits):
            raise TCFDecodeError(f"{self.name} too short: needs {end} bits, has {len(self.bits)}")
        chunk = self.bits[self.pos : end]
        self.pos = end
        return int(chunk, 2) if n else 0

    def read_bool(self) -> bool:
        return self.read_int(1) == 1

    def id_set(self, n: int) -> tuple[int, ...]:
        """Bitfield of ``n`` bits -> 1-based ids of set bits."""
        value = self.read_int(n)
        return tuple(i for i in range(1, n + 1) if value >> (n - i) & 1)

    def letters(self, field_name: str) -> str:
        out = []
        for _ in range(2):
            code = self.read_int(6)
            if code > 25:
                raise TCFDecodeError(f"{self.name}: {field_name} letter value {code} is not A-Z")
            out.append(chr(ord("A") + code))
        return "".join(out)

    def deciseconds(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.read_int(36) * 100)


def segment_bits(raw: str, index: int) -> str:
    """The '0'/'1' string of segment ``index`` (1-based, for messages)."""
    seg = raw.rstrip("=")
    if not seg:
        raise TCFDecodeError(f"segment {index} is empty")
    try:
        return "".join(_B64URL_BITS[ch] for ch in seg)
    except KeyError:
        bad = next(i for i, ch in enumerate(seg) if ch not in _B64URL_BITS)
        shown = seg[:_PREFIX_LEN] + ("..." if len(seg) > _PREFIX_LEN else "")
        raise TCFDecodeError(
            f"segment {index} is not valid base64url (bad character at offset {bad}; "
            f"segment starts {shown!r})"
        ) from None


def read_ranges(r: BitReader, budget: Budget, what: str, max_id: int | None) -> set[int]:
    """A range-encoded id list (NumEntries, then single ids or start-end ranges)."""
    ids: set[int] = set()
    for _ in range(r.read_int(12)):
        is_range = r.read_bool()
        start = r.read_int(16)
        end = r.read_int(16) if is_range else start
        if start == 0:
            raise TCFDecodeError(f"{r.name}: {what} has vendor id 0")
        if end < start:
            raise TCFDecodeError(f"{r.name}: {what} has range {start}-{end} ending before start")
        if max_id is not None and end > max_id:
            raise TCFDecodeError(f"{r.name}: {what} has vendor id {end} above MaxVendorId {max_id}")
        budget.spend(end - start + 1)
        ids.update(range(start, end + 1))
    return ids


def read_vendor_section(r: BitReader, budget: Budget) -> tuple[int, bool, tuple[int, ...]]:
    """MaxVendorId, IsRangeEncoding and the sorted vendor ids, as bitfield or ranges."""
    max_id = r.read_int(16)
    if r.read_bool():
        return max_id, True, tuple(sorted(read_ranges(r, budget, "vendor range", max_id)))
    return max_id, False, r.id_set(max_id)
