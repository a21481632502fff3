"""audit_verify: a whole chain passes; each kind of raw-SQL tampering is named exactly."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command

from compliance.audit.hashing import GENESIS
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.checkpoints import checkpoint_sign
from tests.audit.helpers import append, renumber, tamper

pytestmark = pytest.mark.django_db(databases="__all__")
ALIAS = "eu"


def first(alias=ALIAS):
    result = chain_verify(using=alias)
    assert not result.ok, "tampering went unnoticed"
    return result.first_finding


def run_verify(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_whole_chains_verify_with_exit_code_zero():
    append("eu", 12)
    append("default", 3)
    checkpoint_sign(using="eu")
    append("eu", 2)
    code, out = run_verify()
    assert code == 0, out
    assert "chain eu: OK, 15 entries, 1 signed checkpoints" in out
    assert "chain default: OK, 3 entries" in out
    assert "chain us: OK, 0 entries" in out


def test_modified_entry_is_named():
    append(ALIAS, 10)
    with tamper(ALIAS) as cursor:
        cursor.execute("UPDATE audit_auditevent SET object_id = 'forged' WHERE seq = 5")
    finding = first()
    assert (finding.kind, finding.seq) == ("modified", 5)
    code, out = run_verify("--database", ALIAS)
    assert code == 1
    assert "chain eu: entry #5 modified" in out


def test_modified_payload_of_last_entry_is_named():
    append(ALIAS, 4)
    with tamper(ALIAS) as cursor:
        cursor.execute("SELECT payload FROM audit_auditevent WHERE seq = 4")
        raw = cursor.fetchone()[0]
        payload = raw if isinstance(raw, dict) else json.loads(raw)
        payload["n"] = 99
        cursor.execute(
            "UPDATE audit_auditevent SET payload = %s WHERE seq = 4", [json.dumps(payload)]
        )
    finding = first()
    assert (finding.kind, finding.seq) == ("modified", 4)


def test_removed_entry_is_named():
    append(ALIAS, 10)
    with tamper(ALIAS) as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 5")
    finding = first()
    assert (finding.kind, finding.seq) == ("removed", 5)
    assert "entry #5 is missing" in finding.detail


def test_removed_and_renumbered_entries_are_named():
    append(ALIAS, 10)
    with tamper(ALIAS) as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq IN (5, 6)")
        renumber(cursor, above=6, delta=-2)
    finding = first()
    assert (finding.kind, finding.seq) == ("removed", 5)
    assert "2 entries before it were removed" in finding.detail


def test_inserted_entry_is_named():
    append(ALIAS, 10)
    with tamper(ALIAS) as cursor:
        renumber(cursor, above=4, delta=1)
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, occurred_at, code, actor_type, actor_id, "
            "subject_token, object_type, object_id, payload, hash) "
            "SELECT 5, occurred_at, code, actor_type, actor_id, 'intruder', object_type, "
            "object_id, payload, %s FROM audit_auditevent WHERE seq = 4",
            ["ab" * 32],
        )
    finding = first()
    assert (finding.kind, finding.seq) == ("inserted", 5)
    assert "genuine entry #5 now sits at #6" in finding.detail


def test_reordered_entries_are_named():
    append(ALIAS, 10)
    with tamper(ALIAS) as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE seq = 4")
        cursor.execute("UPDATE audit_auditevent SET seq = 4 WHERE seq = 7")
        cursor.execute("UPDATE audit_auditevent SET seq = 7 WHERE seq = -1")
    finding = first()
    assert (finding.kind, finding.seq) == ("reordered", 4)
    assert "now at #7" in finding.detail


def test_adjacent_swap_is_reordered_not_inserted():
    append(ALIAS, 6)
    with tamper(ALIAS) as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE seq = 2")
        cursor.execute("UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
        cursor.execute("UPDATE audit_auditevent SET seq = 3 WHERE seq = -1")
    finding = first()
    assert (finding.kind, finding.seq) == ("reordered", 2)


def test_log_cut_short_of_signed_checkpoint_is_named():
    append(ALIAS, 10)
    checkpoint = checkpoint_sign(using=ALIAS)  # signs size 10, then appends entry #11
    assert checkpoint.size == 10
    with tamper(ALIAS) as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq >= 9")
        # also hide it from the head: the checkpoint alone must catch it
        cursor.execute(
            "UPDATE audit_auditchainhead SET size = 8, head_hash = "
            "(SELECT hash FROM audit_auditevent WHERE seq = 8)"
        )
    finding = first()
    assert (finding.kind, finding.seq) == ("truncated", 9)
    assert f"checkpoint {checkpoint.pk}" in finding.detail
    assert "covers 10 entries" in finding.detail
    code, out = run_verify("--database", ALIAS)
    assert code == 1 and "entry #9 truncated: the log ends at #8" in out


def test_log_cut_short_of_the_head_without_checkpoint():
    append(ALIAS, 5)
    with tamper(ALIAS) as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 5")
    finding = first()
    assert (finding.kind, finding.seq) == ("truncated", 5)
    assert "chain head records 5 entries" in finding.detail


def test_rewritten_hashes_are_caught_by_the_signed_checkpoint():
    append(ALIAS, 8)
    checkpoint_sign(using=ALIAS)
    rows = list(iter_rows(using=ALIAS))
    prev = bytes.fromhex(GENESIS)
    with tamper(ALIAS) as cursor:
        for row in rows:
            payload = dict(row[8])
            if row[0] == 3:
                payload["n"] = 1000
            canon = json.dumps(
                ["eu", row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], payload],
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            digest = hashlib.sha256(prev + canon).digest()
            prev = digest
            cursor.execute(
                "UPDATE audit_auditevent SET payload = %s, hash = %s WHERE seq = %s",
                [json.dumps(payload), digest.hex(), row[0]],
            )
        cursor.execute("UPDATE audit_auditchainhead SET head_hash = %s", [prev.hex()])
    finding = first()
    assert (finding.kind, finding.seq) == ("checkpoint_mismatch", 8)


def test_forged_checkpoint_signature_is_named():
    append(ALIAS, 3)
    checkpoint = checkpoint_sign(using=ALIAS)
    with tamper(ALIAS) as cursor:
        cursor.execute("UPDATE audit_auditcheckpoint SET size = 2 WHERE id = %s", [checkpoint.pk])
    finding = first()
    assert finding.kind == "bad_signature"
    assert f"checkpoint {checkpoint.pk}" in finding.detail


def test_large_batch_uses_the_fast_path_and_verifies():
    from compliance.audit.services.append import Actor, AuditEntry, audit_append
    from compliance.audit.sql import COPY_THRESHOLD

    append(ALIAS, 2)
    entries = [
        AuditEntry(
            code=201,
            actor=Actor.system("bulk"),
            subject_token=f"t{i}",
            object_type="segment",
            object_id="s1",
            payload={"reason": "criteria", "membership_id": i, "note": "ünïcode"},
        )
        for i in range(COPY_THRESHOLD + 100)
    ]
    rows = audit_append(using=ALIAS, entries=entries)
    assert [rows[0].seq, rows[-1].seq] == [3, COPY_THRESHOLD + 102]
    result = chain_verify(using=ALIAS)
    assert result.ok and result.entries == COPY_THRESHOLD + 102
    assert result.last_hash == rows[-1].hash
