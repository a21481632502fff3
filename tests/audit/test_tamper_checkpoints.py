"""audit_verify against someone who owns the tables (PostgreSQL, triggers switched off with
``session_replication_role = replica``): checkpoints deleted, tail cut, history rewritten with
recomputed hashes, everything wiped. With the witness all four are found; without it, the
chain's own ``CHECKPOINT_SIGNED`` entries still find the first and the third.

The chain of every test: entries #1..#10, checkpoint at 10 (recorded by #11), #12..#21,
checkpoint at 21 (#22), #23..#32, checkpoint at 32 (#33), #34..#36; witness files 1..3.
"""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections

from compliance.audit.selectors.rows import iter_rows
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.checkpoints import checkpoint_sign
from tests.audit.helpers import append, rehashed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__")]
ALIAS = "eu"


@pytest.fixture
def chain(django_capture_on_commit_callbacks):
    for _ in range(3):
        append(ALIAS, 10)
        with django_capture_on_commit_callbacks(using=ALIAS, execute=True):
            assert checkpoint_sign(using=ALIAS) is not None  # witnessed once committed
    append(ALIAS, 3)
    assert chain_verify(using=ALIAS, witness=settings.COMPLIANCE_AUDIT_WITNESS_DIR).ok
    return settings.COMPLIANCE_AUDIT_WITNESS_DIR


def owner_sql(*statements: tuple) -> None:
    """Run statements as the table owner with every (non-ALWAYS) trigger off."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            for sql, *params in statements:
                cursor.execute(sql, *params)
        finally:
            cursor.execute("RESET session_replication_role")


def found(*, witness: str | None) -> set[tuple[str, int]]:
    result = chain_verify(using=ALIAS, witness=witness)
    return {(f.kind, f.seq) for f in result.findings}


def verify_command(witness: str | None) -> tuple[int, str]:
    out = io.StringIO()
    args = ["--database", ALIAS] + (["--witness", witness] if witness else [])
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_all_checkpoints_deleted(chain):
    owner_sql(("DELETE FROM audit_auditcheckpoint",))
    # without a witness: the chain's CHECKPOINT_SIGNED entries #11, #22, #33 vouch for them
    assert found(witness=None) == {
        ("checkpoint_missing", 11),
        ("checkpoint_missing", 22),
        ("checkpoint_missing", 33),
    }
    code, out = verify_command(None)
    assert code == 1
    assert "chain eu: entry #11 checkpoint_missing: it records checkpoint" in out
    assert "which is missing from the checkpoint table" in out
    # with it: the witness files hold the same three checkpoints (named by their sizes)
    assert found(witness=chain) >= {
        ("checkpoint_missing", 10),
        ("checkpoint_missing", 11),
        ("checkpoint_missing", 21),
        ("checkpoint_missing", 32),
    }


def test_altered_checkpoint_is_missing_as_signed(chain):
    owner_sql(("UPDATE audit_auditcheckpoint SET signature = repeat('0', 128) WHERE size = 21",))
    kinds = found(witness=None)
    assert ("bad_signature", 21) in kinds
    assert ("checkpoint_missing", 22) in kinds  # the chain recorded it otherwise


def test_tail_cut_checkpoints_after_it_deleted_and_head_reset(chain):
    owner_sql(
        ("DELETE FROM audit_auditevent WHERE seq > 15",),
        ("DELETE FROM audit_auditcheckpoint WHERE size > 15",),
        (
            "UPDATE audit_auditchainhead SET size = 15, "
            "head_hash = (SELECT hash FROM audit_auditevent WHERE seq = 15)",
        ),
    )
    # without a witness nothing is left to tell (the documented limit)
    assert chain_verify(using=ALIAS).ok
    kinds = found(witness=chain)
    assert ("truncated", 16) in kinds
    result = chain_verify(using=ALIAS, witness=chain)
    assert (result.first_finding.kind, result.first_finding.seq) == ("truncated", 16)
    assert "witness file 000000000003.json records a signed head at size 32" in (
        result.first_finding.detail
    )
    code, out = verify_command(chain)
    assert code == 1 and "chain eu: entry #16 truncated: the log ends at #15" in out


def _set_n(value: int):
    return lambda payload: payload.update(n=value)


def _rewrite_from(start: int) -> None:
    """Re-insert entries ``start``.. with a changed payload at ``start`` and every later hash
    recomputed (with the toolkit's own canonical form); truncate the checkpoints; move the
    head: what someone with the tables but not the signing key can do."""
    inserts = rehashed(
        list(iter_rows(using=ALIAS)), chain_id=ALIAS, start=start, change=_set_n(999)
    )
    prev = inserts[-1][2]
    statements = [("DELETE FROM audit_auditevent WHERE seq >= %s", [start])]
    for row, payload, digest in inserts:
        statements.append(
            (
                "INSERT INTO audit_auditevent (seq, occurred_at, code, actor_type, actor_id, "
                "subject_token, object_type, object_id, payload, hash) "
                "VALUES (%s, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s)",
                [row[0], row[1], *row[2:8], json.dumps(payload), digest],
            )
        )
    statements.append(("TRUNCATE audit_auditcheckpoint",))
    statements.append(("UPDATE audit_auditchainhead SET head_hash = %s", [prev]))
    owner_sql(*statements)


def test_rewrite_with_recomputed_hashes_checkpoints_truncated_head_updated(chain):
    _rewrite_from(15)
    # without a witness: #22 records the head signed at 21, which the rewrite cannot match,
    # and #11 records a checkpoint the table lost
    assert found(witness=None) == {("checkpoint_missing", 11), ("checkpoint_mismatch", 21)}
    result = chain_verify(using=ALIAS, witness=chain)
    kinds = {(f.kind, f.seq) for f in result.findings}
    assert ("rewritten", 21) in kinds
    rewritten = next(f for f in result.findings if f.kind == "rewritten")
    assert "witness file 000000000002.json" in rewritten.detail
    assert "entries #11..#21 were rewritten (#10, witnessed too, still matches)" in (
        rewritten.detail
    )
    code, out = verify_command(chain)
    assert code == 1 and "entry #21 rewritten" in out


def test_everything_wiped(chain):
    owner_sql(("TRUNCATE audit_auditevent, audit_auditcheckpoint, audit_auditchainhead",))
    assert chain_verify(using=ALIAS).ok  # an empty chain proves nothing by itself
    result = chain_verify(using=ALIAS, witness=chain)
    assert [(f.kind, f.seq) for f in result.findings] == [("wiped", 1)]
    assert "the witness holds 3 checkpoint(s)" in result.first_finding.detail
    code, out = verify_command(chain)
    assert code == 1 and "chain eu: entry #1 wiped" in out


def test_tail_entry_recording_the_last_checkpoint_cut_is_found_by_the_witness(chain):
    # the newest CHECKPOINT_SIGNED entry and the checkpoint go, the head is reset: the chain
    # is still whole up to the signed size, but the witness holds a checkpoint the table lost
    owner_sql(
        ("DELETE FROM audit_auditevent WHERE seq >= 33",),
        ("DELETE FROM audit_auditcheckpoint WHERE size = 32",),
        (
            "UPDATE audit_auditchainhead SET size = 32, "
            "head_hash = (SELECT hash FROM audit_auditevent WHERE seq = 32)",
        ),
    )
    assert chain_verify(using=ALIAS).ok
    assert found(witness=chain) == {("checkpoint_missing", 32)}


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("scenario", ["checkpoints_deleted", "tail_cut", "rewritten", "wiped"])
def test_the_parallel_walk_finds_the_same(scenario, monkeypatch, settings):
    """The chunked, multi-process PostgreSQL walk (forced on three chunks) reports exactly what
    the one-process walk reports, witness included."""
    from compliance.audit.selectors import walk as fast

    for _ in range(3):
        append(ALIAS, 10)
        checkpoint_sign(using=ALIAS)  # autocommit: witnessed at once
    append(ALIAS, 3)
    witness = settings.COMPLIANCE_AUDIT_WITNESS_DIR
    if scenario == "checkpoints_deleted":
        owner_sql(("DELETE FROM audit_auditcheckpoint",))
    elif scenario == "tail_cut":
        owner_sql(
            ("DELETE FROM audit_auditevent WHERE seq > 15",),
            ("DELETE FROM audit_auditcheckpoint WHERE size > 15",),
            (
                "UPDATE audit_auditchainhead SET size = 15, "
                "head_hash = (SELECT hash FROM audit_auditevent WHERE seq = 15)",
            ),
        )
    elif scenario == "rewritten":
        _rewrite_from(15)
    else:
        owner_sql(("TRUNCATE audit_auditevent, audit_auditcheckpoint, audit_auditchainhead",))
    one = [chain_verify(using=ALIAS, witness=w).findings for w in (None, witness)]
    monkeypatch.setattr(fast, "PARALLEL_MIN", 2)
    monkeypatch.setattr(fast, "PARALLEL_WORKERS", 3)
    chunked = [chain_verify(using=ALIAS, witness=w).findings for w in (None, witness)]
    assert chunked == one
    expected = {
        "checkpoints_deleted": ("checkpoint_missing", 10),
        "tail_cut": ("truncated", 16),
        "rewritten": ("rewritten", 21),
        "wiped": ("wiped", 1),
    }[scenario]
    assert expected in {(f.kind, f.seq) for f in chunked[1]}
