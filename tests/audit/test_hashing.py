"""The one canonical hash (``hashing``) agrees byte for byte with the standalone bundle
verifier's own copy, with and without ``orjson``, and append and verify agree on a chain of
varied entries on either backend."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from compliance.audit import hashing
from compliance.audit.bundle.verify_bundle import canonical_entry
from compliance.audit.hashing import GENESIS, canonical, canonical_json, entry_hash
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import Actor, AuditEntry, audit_append

FIELDS = ("actor_type", "actor_id", "subject_token", "object_type", "object_id")
TEXTS = [
    "",
    "plain",
    "Zürich – Łódź",
    "日本語のテキスト",
    "emoji 🎉👩🏽‍💻",
    'quote " and backslash \\',
    "controls \x00\x01\x1f\x7f",
    "newline\nreturn\rtab\t",
    "separators \u2028\u2029",
    "rtl שלום مرحبا",
    "/slash/ and </script>",
]
INTS = [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**70), 10**30]


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TEXTS)
    return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFF)]))
                   for _ in range(rng.randrange(0, 12)))  # fmt: skip


def _value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.choice(INTS + [rng.randrange(-(10**6), 10**6)])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return None
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return _payload(rng, depth + 1)


def _payload(rng: random.Random, depth: int = 0) -> dict:
    return {_text(rng): _value(rng, depth) for _ in range(rng.randrange(0, 5))}


def _entries(count: int, seed: int = 16) -> list[dict]:
    rng = random.Random(seed)
    entries = []
    for seq in range(1, count + 1):
        entry = {
            "chain_id": rng.choice(["eu", "us", "default", "région"]),
            "seq": rng.choice([seq, seq, 2**63 - 1]),
            "occurred_at": "2026-12-01T15:44:00.123456Z",
            "code": rng.choice([101, 201, 801, 2**40]),
            **{name: _text(rng) for name in FIELDS},
            "payload": _payload(rng) if rng.random() < 0.7 else {"flat": rng.choice(INTS)},
        }
        entries.append(entry)
    return entries


def _ours(entry: dict) -> bytes:
    return canonical(**entry)


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "stdlib"])
def test_canonical_agrees_byte_for_byte_with_the_bundle_verifier(monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(hashing, "_fast_dumps", None)
    elif hashing._fast_dumps is None:
        pytest.skip("orjson is not installed")
    prev = bytes.fromhex(GENESIS)
    for entry in _entries(3000):
        theirs = canonical_entry(entry)
        assert _ours(entry) == theirs, entry
        # the bundle carries the payload as JSON text: read back, it hashes the same
        assert _ours({**entry, "payload": json.loads(canonical_json(entry["payload"]))}) == theirs
        fields = {k: v for k, v in entry.items() if k != "payload"}
        digest = entry_hash(prev=prev, payload=entry["payload"], **fields)
        assert digest == hashlib.sha256(prev + theirs).digest()
        prev = digest


def test_canonical_json_is_json_dumps():
    rng = random.Random(7)
    for _ in range(2000):
        value = _payload(rng)
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(value) == expected


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("alias", ["eu", "default"])
def test_append_and_verify_agree_on_varied_entries(alias):
    """The entries append writes (COPY on PostgreSQL from 500 on, INSERT below) verify."""
    rng = random.Random(3)
    entries = [
        AuditEntry(
            code=e["code"] if e["code"] < 2**31 else 101,
            actor=Actor(kind=e["actor_type"][:16], id=e["actor_id"][:64]),
            subject_token=e["subject_token"][:64],
            object_type=e["object_type"][:64],
            object_id=e["object_id"][:64],
            payload=e["payload"],
        )
        for e in _entries(2000, seed=rng.randrange(1000))
        # PostgreSQL text holds no NUL; the payload check refuses what looks like an e-mail
        if "\\u0000" not in json.dumps(e) and "@" not in json.dumps(e)
    ][:600]
    assert len(entries) == 600
    audit_append(using=alias, entries=entries)
    audit_append(using=alias, entries=entries[:20])
    result = chain_verify(using=alias)
    assert result.ok, result.findings
    assert result.entries == len(entries) + 20
