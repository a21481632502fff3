"""Holdout assignment: which arm (``treatment`` or ``control``) a subject is in for a segment.

The assignment is deterministic and re-derivable by anyone holding an export::

    u(salt, subject) = int.from_bytes(sha256(f"{salt}:{subject_id}").digest()[:8], "big") / 2**64
    arm = "control" if u < control_group_share else "treatment"

``subject_id`` is the UUID in its canonical lowercase, hyphenated form (``str(uuid)``); the
salt is the segment's ``holdout_salt`` (hex, drawn when the segment is activated). The test
vectors in docs/segments.md pin the function; ``tests/segments/test_holdout.py`` checks them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

TREATMENT = "treatment"
CONTROL = "control"
ARMS = (TREATMENT, CONTROL)

_SCALE = float(2**64)


def holdout_salt_new() -> str:
    """A fresh random salt (32 hex characters, 128 bits)."""
    return secrets.token_hex(16)


def holdout_unit(*, salt: str, subject_id: UUID | str) -> float:
    """``u(salt, subject)`` in [0, 1): the first 8 bytes of SHA-256 of ``salt:subject_id``
    as an unsigned big-endian integer, divided by 2^64."""
    text = f"{salt}:{UUID(str(subject_id))}"
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def holdout_arm(*, salt: str, subject_id: UUID | str, share: Decimal | float | None) -> str:
    """``control`` when ``u(salt, subject) < share``, else ``treatment``; no share (or no
    salt) means no control group: everyone is ``treatment``."""
    if not salt or not share:
        return TREATMENT
    return CONTROL if holdout_unit(salt=salt, subject_id=subject_id) < float(share) else TREATMENT


def _control_below(share: float) -> bytes | None:
    """The 8-byte big-endian ``T`` with ``u < share`` exactly when the hash prefix is below
    ``T`` (the smallest prefix whose ``u`` reaches ``share``, found by bisection on the very
    expression ``holdout_unit`` evaluates); ``None`` when every prefix is below."""
    low, high = 0, 2**64  # u(high) >= share is taken as given; u(low - 1) < share
    while low < high:
        middle = (low + high) // 2
        if middle / _SCALE < share:
            low = middle + 1
        else:
            high = middle
    return None if low >= 2**64 else low.to_bytes(8, "big")


def holdout_arms(
    *, salt: str, share: Decimal | float | None, subject_texts: Iterable[str]
) -> list[str]:
    """``holdout_arm`` of many subjects at once, for the write path: ``subject_texts`` are the
    ids already in canonical form (``str(uuid)``), so each costs one SHA-256, one comparison
    of its digest with a precomputed threshold and no parsing. No share or no salt (a segment
    never activated) gives ``treatment`` to everyone."""
    if not salt or not share:
        return [TREATMENT for _ in subject_texts]
    below = _control_below(float(share))
    if below is None:
        return [CONTROL for _ in subject_texts]
    prefix, sha = f"{salt}:".encode("ascii"), hashlib.sha256
    # a 32-byte digest sorts below the 8-byte threshold exactly when its first 8 bytes do
    return [
        CONTROL if sha(prefix + text.encode("ascii")).digest() < below else TREATMENT
        for text in subject_texts
    ]
