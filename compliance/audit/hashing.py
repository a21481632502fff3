"""Canonical form and hash of an audit entry: the one definition that append and both
verification walk use. Pure Python: the offline verifier (``bundle/verify_bundle.py``) keeps
its own copy by design, and a test checks that the two agree byte for byte.

``entry_hash = SHA-256(prev_hash_bytes || canonical(entry))`` where ``canonical`` is the
compact, key-sorted UTF-8 JSON (no ASCII escaping) of the list
``[chain_id, seq, occurred_at, code, actor_type, actor_id, subject_token, object_type, object_id,
payload]`` and ``occurred_at`` is ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC. The first entry's
previous hash is 32 zero bytes (``GENESIS``).

Speed: the form is what ``json.dumps(entry, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` writes. ``orjson``, when installed, writes it about five times faster for
the usual entry (string and integer fields, a flat payload of strings, integers of up to 64 bits,
booleans and nulls: there both write the same bytes); any other entry, or an entry ``orjson``
refuses, takes the standard library's encoder, built once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import c_encode_basestring, c_make_encoder

try:  # optional accelerator: the same bytes for the usual entry
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

GENESIS = "0" * 64

_sha256 = hashlib.sha256
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
#: payload values for which ``orjson`` and the standard library write the same bytes (floats
#: may differ; integers beyond 64 bits make ``orjson`` raise, and then the library encodes)
_FLAT_TYPES = frozenset({str, int, bool, type(None)})
_fast_dumps = orjson.dumps if orjson is not None else None
_SORT_KEYS = orjson.OPT_SORT_KEYS if orjson is not None else 0


def _default(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: the standard library's canonical encoder, built once (``json.dumps`` builds one per call)
_c_encoder = (
    c_make_encoder(None, _default, c_encode_basestring, None, ":", ",", True, False, True)
    if c_make_encoder is not None and c_encode_basestring is not None
    else None
)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON text: what ``json.dumps(value, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` writes (e.g. the stored payload)."""
    if _c_encoder is None:
        return _encode(value)
    return "".join(_c_encoder(value, 0))


#: the fields of an entry, in the order its canonical form lists them
FIELDS = (
    "chain_id",
    "seq",
    "occurred_at",
    "code",
    "actor_type",
    "actor_id",
    "subject_token",
    "object_type",
    "object_id",
    "payload",
)


def _dumped(entry: list) -> bytes:
    """The canonical bytes of ``entry`` (its ``FIELDS`` values in order; the payload last)."""
    payload = entry[9]
    if (
        _fast_dumps is not None
        and type(payload) is dict
        and _FLAT_TYPES.issuperset(map(type, payload.values()))
    ):
        try:
            return _fast_dumps(entry, option=_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
            pass
    return canonical_json(entry).encode()


def canonical(**entry: object) -> bytes:
    """The canonical bytes of an entry given by keyword, one per ``FIELDS`` name (the same
    arguments as ``entry_hash`` but ``prev``). The fields are strings and integers (the stored
    column types); ``payload`` is the parsed payload (a dict for every entry the toolkit
    writes)."""
    return _dumped([entry[name] for name in FIELDS])


def entry_hash(
    *,
    prev: bytes,
    chain_id: str,
    seq: int,
    occurred_at: str,
    code: int,
    actor_type: str,
    actor_id: str,
    subject_token: str,
    object_type: str,
    object_id: str,
    payload: object,
) -> bytes:
    """The raw SHA-256 of an entry's ``canonical`` bytes after ``prev`` (the previous entry's
    raw 32-byte hash): the hash append stores and the verification walk recomputes."""
    entry = [
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
    ]
    return _sha256(prev + _dumped(entry)).digest()


def chain_hash(*, prev_hash: str, canonical_bytes: bytes) -> str:
    """Hex SHA-256 of ``canonical_bytes`` after ``prev_hash`` (hex)."""
    return _sha256(bytes.fromhex(prev_hash) + canonical_bytes).hexdigest()
