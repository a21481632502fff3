"""Canonical form and hash of an audit entry. Pure Python: the offline verifier mirrors it.

``entry_hash = SHA-256(prev_hash_bytes || canonical_json(entry))`` where ``canonical_json`` is
the compact, key-sorted UTF-8 JSON of the list
``[chain_id, seq, occurred_at, code, actor_type, actor_id, subject_token, object_type, object_id,
payload]`` and ``occurred_at`` is ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC. The first entry's
previous hash is 32 zero bytes (``GENESIS``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS = "0" * 64


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(
    *,
    chain_id: str,
    seq: int,
    occurred_at: str,
    code: int,
    actor_type: str,
    actor_id: str,
    subject_token: str,
    object_type: str,
    object_id: str,
    payload: dict,
) -> bytes:
    return json.dumps(
        [
            chain_id,
            seq,
            occurred_at,
            code,
            actor_type,
            actor_id,
            subject_token,
            object_type,
            object_id,
            payload,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def chain_hash(*, prev_hash: str, canonical_bytes: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes).hexdigest()
