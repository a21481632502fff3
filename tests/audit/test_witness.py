"""The witness outside the database: a chain of exclusively created, fsynced files per chain,
an optional signed HTTP POST, catching up after an outage, and ``audit_verify --witness``."""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance import crypto
from compliance.audit import schedule
from compliance.audit.hashing import format_time
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.rows import iter_rows
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.selectors.witness import witness_read
from compliance.audit.services import witness as witness_service
from compliance.audit.services.checkpoints import checkpoint_sign
from compliance.audit.services.witness import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    WitnessError,
    file_path,
    witness_write_file,
)
from compliance.audit.signing import checkpoint_message
from tests.audit.helpers import append, rehashed, tamper

pytestmark = pytest.mark.django_db(databases="__all__")
FIELDS = {
    "format",
    "chain_id",
    "number",
    "size",
    "head_hash",
    "signed_at",
    "key_id",
    "signature",
    "previous",
}


@pytest.fixture
def root(settings) -> Path:
    return Path(settings.COMPLIANCE_AUDIT_WITNESS_DIR)


@pytest.fixture
def sign(django_capture_on_commit_callbacks):
    def run(alias: str, **kwargs):
        with django_capture_on_commit_callbacks(using=alias, execute=True):
            return checkpoint_sign(using=alias, **kwargs)

    return run


def test_each_checkpoint_is_one_linked_read_only_file_per_chain(root, sign, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd)
    )
    append("eu", 3)
    first = sign("eu")
    append("eu", 2)
    second = sign("eu")
    append("us", 1)
    sign("us")
    one = file_path(root=root, chain_id="eu", number=1)
    two = file_path(root=root, chain_id="eu", number=2)
    assert one == root / "eu" / "00000000" / "000000000001.json"
    assert sorted(p.name for p in (root / "eu" / "00000000").iterdir()) == [one.name, two.name]
    assert (root / "us" / "00000000" / "000000000001.json").exists()
    doc1, doc2 = json.loads(one.read_text()), json.loads(two.read_text())
    # the signed statement and the link, nothing else (no tokens, no payloads)
    assert set(doc1) == set(doc2) == FIELDS
    assert doc1["previous"] is None
    assert doc2["previous"] == {
        "file": one.name,
        "sha256": hashlib.sha256(one.read_bytes()).hexdigest(),
    }
    for doc, checkpoint in ((doc1, first), (doc2, second)):
        assert (doc["chain_id"], doc["size"], doc["head_hash"], doc["signature"]) == (
            "eu",
            checkpoint.size,
            checkpoint.head_hash,
            checkpoint.signature,
        )
        message = checkpoint_message(
            chain_id="eu",
            size=doc["size"],
            head_hash=doc["head_hash"],
            signed_at=doc["signed_at"],
            key_id=doc["key_id"],
        )
        crypto.public_key().verify(bytes.fromhex(doc["signature"]), message)
    assert stat.S_IMODE(one.stat().st_mode) == 0o444
    # every file, then its directory, reached the disk
    assert synced.count(False) == 3 and synced.count(True) >= 3
    log = witness_read(root=root, chain_id="eu")
    assert [w.size for w in log.checkpoints] == [3, 6] and not log.problems


def test_a_taken_number_is_never_overwritten(root, sign, monkeypatch):
    append("eu", 2)
    sign("eu")
    append("eu", 1)
    checkpoint = sign("eu")
    two = file_path(root=root, chain_id="eu", number=2)
    before = two.read_bytes()
    # a writer that read the directory before file 2 was created races for number 2
    one = file_path(root=root, chain_id="eu", number=1)
    stale = iter([witness_service.WitnessFile(number=1, path=one, data=one.read_bytes())])
    real = witness_service.witness_latest
    monkeypatch.setattr(
        witness_service, "witness_latest", lambda **kw: next(stale, None) or real(**kw)
    )
    written = witness_write_file(root=root, checkpoint=checkpoint)
    assert written.number == 3  # O_EXCL refused number 2; it linked to the real file 2
    assert two.read_bytes() == before
    assert json.loads(written.data)["previous"]["file"] == two.name
    assert not witness_read(root=root, chain_id="eu").problems


def test_idle_chain_catches_up_with_a_witness_that_was_down(root, settings, sign):
    append("eu", 2)
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = ""  # no witness while this one is signed
    checkpoint = sign("eu")
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = str(root)
    assert sign("eu") is None  # idle: nothing new to sign ...
    doc = json.loads(file_path(root=root, chain_id="eu", number=1).read_text())
    assert doc["size"] == checkpoint.size  # ... but its last checkpoint is witnessed now
    assert sign("eu") is None
    assert not file_path(root=root, chain_id="eu", number=2).exists()  # once


class _Witness(BaseHTTPRequestHandler):
    received: list = []
    status = 201

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_witness(settings):
    _Witness.received = []
    _Witness.status = 201
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.COMPLIANCE_AUDIT_WITNESS_URL = f"http://127.0.0.1:{server.server_port}/witness"
    yield _Witness
    server.shutdown()
    server.server_close()


def test_http_witness_receives_each_checkpoint_signed(http_witness, root, sign):
    append("eu", 3)
    checkpoint = sign("eu")
    [(headers, body)] = http_witness.received
    document = json.loads(body)
    assert document == json.loads(file_path(root=root, chain_id="eu", number=1).read_text())
    assert document["signed_at"] == format_time(checkpoint.signed_at)
    assert headers[KEY_ID_HEADER] == crypto.key_id()
    crypto.public_key().verify(base64.b64decode(headers[SIGNATURE_HEADER]), body)


def test_http_witness_refusal_is_an_error_and_the_checkpoint_stays(http_witness, sign):
    http_witness.status = 503
    append("eu", 1)
    with pytest.raises(WitnessError, match="503"):
        sign("eu")
    assert AuditCheckpoint.objects.using("eu").filter(size=1).exists()


def test_beat_signs_every_minute_by_default_and_follows_the_setting(settings):
    assert schedule.BEAT_SCHEDULE["audit-checkpoint-eu"]["schedule"] == 60.0
    assert schedule.BEAT_SCHEDULE["audit-checkpoint-control"]["schedule"] == 60.0
    settings.COMPLIANCE_AUDIT_CHECKPOINT_SECONDS = 15
    try:
        reloaded = importlib.reload(schedule)
        assert reloaded.BEAT_SCHEDULE["audit-checkpoint-us"]["schedule"] == 15.0
        assert reloaded.BEAT_SCHEDULE["audit-checkpoint-us"]["kwargs"] == {"region": "us"}
    finally:
        settings.COMPLIANCE_AUDIT_CHECKPOINT_SECONDS = 60
        importlib.reload(schedule)


def test_audit_verify_with_witness_on_a_whole_chain(root, sign):
    append("eu", 4)
    sign("eu")
    append("eu", 1)
    sign("eu")
    out = io.StringIO()
    call_command("audit_verify", "--database", "eu", "--witness", str(root), stdout=out)
    assert "chain eu: OK, 7 entries, 2 signed checkpoints, 2 witnessed" in out.getvalue()
    out = io.StringIO()
    call_command("audit_verify", "--database", "eu", "--witness", stdout=out)  # configured dir
    assert "2 witnessed" in out.getvalue()


def test_edited_witness_file_breaks_the_witness(root, sign):
    append("eu", 2)
    sign("eu")
    append("eu", 2)
    sign("eu")
    one = file_path(root=root, chain_id="eu", number=1)
    one.chmod(0o644)
    doc = json.loads(one.read_text())
    doc["head_hash"] = "00" * 32
    one.write_text(json.dumps(doc))
    kinds = {(f.kind, f.seq) for f in chain_verify(using="eu", witness=root).findings}
    assert ("witness_broken", 2) in kinds  # its signature no longer holds
    assert ("witness_broken", 5) in kinds  # file 2 no longer links to it


def test_checkpoints_deleted_are_found_from_the_chain_on_any_database(sign):
    append("us", 3)
    checkpoint = sign("us")
    with tamper("us") as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint")
    result = chain_verify(using="us")
    assert [(f.kind, f.seq) for f in result.findings] == [("checkpoint_missing", 4)]
    assert f"it records checkpoint {checkpoint.pk} (size 3" in result.first_finding.detail
    recorded = AuditEvent.objects.using("us").get(seq=4)
    assert recorded.payload["signature"] == checkpoint.signature


def test_rewrite_with_recomputed_hashes_is_found_from_the_chain_on_any_database(sign):
    """The generic walk (SQLite) takes the claims the chain recorded like the PostgreSQL one."""
    append("us", 4)
    sign("us")  # size 4, recorded by #5
    append("us", 2)
    sign("us")  # size 7, recorded by #8
    rewritten = rehashed(
        list(iter_rows(using="us")),
        chain_id="us",
        start=6,
        change=lambda payload: payload.update(n=1000),
    )
    prev = rewritten[-1][2]
    with tamper("us") as cursor:
        for row, payload, digest in rewritten:
            cursor.execute(
                "UPDATE audit_auditevent SET payload = %s, hash = %s WHERE seq = %s",
                [json.dumps(payload), digest, row[0]],
            )
        cursor.execute("DELETE FROM audit_auditcheckpoint")
        cursor.execute("UPDATE audit_auditchainhead SET head_hash = %s", [prev])
    result = chain_verify(using="us")
    assert [(f.kind, f.seq) for f in result.findings] == [
        ("checkpoint_missing", 5),
        ("checkpoint_mismatch", 7),
    ]
    assert "recorded by entry #8" in result.findings[1].detail


def test_deploy_check_warns_without_a_witness_outside_the_var_dir(settings, tmp_path):
    from compliance.audit.checks import check_audit_witness

    settings.COMPLIANCE_AUDIT_WITNESS_DIR = str(Path(settings.VAR_DIR) / "witness")
    [warning] = check_audit_witness()
    assert warning.id == "audit.W003" and "inside COMPLIANCE_VAR_DIR" in warning.msg
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = ""
    assert "no audit witness is configured" in check_audit_witness()[0].msg
    settings.COMPLIANCE_AUDIT_WITNESS_URL = "https://witness.example/audit"
    assert check_audit_witness() == []
    settings.COMPLIANCE_AUDIT_WITNESS_URL = ""
    settings.COMPLIANCE_AUDIT_WITNESS_DIR = str(tmp_path / "elsewhere")
    assert check_audit_witness() == []


def test_audit_verify_refuses_a_witness_directory_that_is_not_there(tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no such directory"):
        call_command("audit_verify", "--witness", str(tmp_path / "typo"), stdout=io.StringIO())
