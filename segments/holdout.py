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
