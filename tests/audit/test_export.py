"""audit_export: bundle contents, real openssl, the standalone verifier, tampering, anchors."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.services.append import Actor
from compliance.audit.services.export import audit_export
from tests.audit.helpers import ACTOR, append

pytestmark = pytest.mark.django_db(databases="__all__")
OPENSSL = shutil.which("openssl")
FILES = {
    "entries.jsonl",
    "entries.csv",
    "checkpoints.json",
    "public_key.pem",
    "report.html",
    "lift.json",
    "verify_bundle.py",
    "VERIFY.md",
    "manifest.json",
    "manifest.sig",
}


def export(tmp_path: Path, **kwargs) -> Path:
    out = tmp_path / "bundle.zip"
    call_command(
        "audit_export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--out",
        str(out),
        stdout=io.StringIO(),
        **kwargs,
    )
    return out


def extract(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "extracted"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(target)
    return target


def openssl_verify(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            OPENSSL,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "public_key.pem",
            "-rawin",
            "-in",
            "manifest.json",
            "-sigfile",
            "manifest.sig",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
    )


def run_verifier(target: Path, verifier: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(verifier), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bundle_has_every_file_and_both_verifiers_accept_it(tmp_path):
    append("eu", 20)
    append("default", 2)
    bundle = export(tmp_path)
    directory = extract(bundle, tmp_path)
    assert {p.name for p in directory.iterdir()} == FILES
    manifest = json.loads((directory / "manifest.json").read_text())
    assert set(manifest["files"]) == FILES - {"manifest.json", "manifest.sig"}
    assert len((directory / "manifest.sig").read_bytes()) == 64
    # the fresh checkpoint signed at export, then its CHECKPOINT_SIGNED entry
    assert manifest["chains"]["eu"]["count"] == 21
    assert manifest["chains"]["eu"]["anchor_hash"] == "0" * 64
    checkpoints = json.loads((directory / "checkpoints.json").read_text())
    assert {(c["chain_id"], c["size"]) for c in checkpoints} >= {("eu", 20), ("default", 2)}
    assert OPENSSL, "the openssl binary is needed"
    result = openssl_verify(directory)
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout
    verifier = directory / "verify_bundle.py"
    for target in (bundle, directory):
        result = run_verifier(target, verifier)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "BUNDLE VERIFIED" in result.stdout
    assert "chain eu: entries #1..#21 (21)" in result.stdout
    verify_md = (directory / "VERIFY.md").read_text()
    assert (
        "openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json "
        "-sigfile manifest.sig" in verify_md
    )
    lines = (directory / "entries.jsonl").read_text().splitlines()
    assert len(lines) == 21 + 3  # default: 2 + CHECKPOINT_SIGNED
    assert (directory / "entries.csv").read_text().count("\n") == len(lines) + 1


def test_flipped_byte_in_manifest_fails_both_verifiers(tmp_path):
    append("eu", 5)
    directory = extract(export(tmp_path), tmp_path)
    manifest = directory / "manifest.json"
    data = bytearray(manifest.read_bytes())
    data[40] ^= 0x01
    manifest.write_bytes(bytes(data))
    assert openssl_verify(directory).returncode != 0
    result = run_verifier(directory, directory / "verify_bundle.py")
    assert result.returncode == 1
    assert "manifest.sig is not a valid signature" in result.stderr


def test_flipped_byte_in_entries_fails_the_verifier_and_the_manifest_hashes(tmp_path):
    append("eu", 5)
    bundle = export(tmp_path)
    directory = extract(bundle, tmp_path)
    entries = directory / "entries.jsonl"
    data = bytearray(entries.read_bytes())
    index = data.index(b'"subject_token":"tok3"') + len('"subject_token":"tok')
    data[index] ^= 0x01  # tok3 -> tok2
    entries.write_bytes(bytes(data))
    assert openssl_verify(directory).returncode == 0  # the manifest itself is intact ...
    result = run_verifier(directory, directory / "verify_bundle.py")
    assert result.returncode == 1  # ... but the file no longer has its hash
    assert "entries.jsonl: SHA-256 differs from the manifest" in result.stderr
    # a flipped byte in any file's stored data inside the zip breaks the bundle too (the zip's
    # own bookkeeping, e.g. a local header's time, is not evidence and is not what is checked)
    import zipfile

    with zipfile.ZipFile(bundle) as archive:
        stored = [i for i in archive.infolist() if i.compress_size > 0]
    raw_bundle = bundle.read_bytes()
    for info in stored:
        name_len = int.from_bytes(
            raw_bundle[info.header_offset + 26 : info.header_offset + 28], "little"
        )
        extra_len = int.from_bytes(
            raw_bundle[info.header_offset + 28 : info.header_offset + 30], "little"
        )
        start = info.header_offset + 30 + name_len + extra_len
        raw = bytearray(raw_bundle)
        raw[start + info.compress_size // 2] ^= 0x01
        broken = tmp_path / "broken.zip"
        broken.write_bytes(bytes(raw))
        result = run_verifier(broken, directory / "verify_bundle.py")
        assert result.returncode == 1, (info.filename, result.stdout)


def test_entry_edited_and_manifest_resigned_by_someone_else_fails(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    append("eu", 3)
    directory = extract(export(tmp_path), tmp_path)
    forged = Ed25519PrivateKey.generate()
    (directory / "manifest.sig").write_bytes(
        forged.sign((directory / "manifest.json").read_bytes())
    )
    assert openssl_verify(directory).returncode != 0
    assert run_verifier(directory, directory / "verify_bundle.py").returncode == 1


def test_period_export_carries_the_anchor_and_verifies(tmp_path):
    old = datetime(2024, 1, 10, tzinfo=UTC)
    from compliance.audit.services.append import AuditEntry, audit_append

    for day in range(5):
        audit_append(
            using="eu",
            entries=[AuditEntry(code=101, actor=ACTOR, payload={"day": day})] * 2,
            at=old + timedelta(days=day),
        )
    out = tmp_path / "period.zip"
    result = audit_export(
        start=datetime(2024, 1, 12, tzinfo=UTC),
        end=datetime(2024, 1, 14, tzinfo=UTC),
        out=out,
        actor=Actor.system("test"),
        aliases=["eu"],
    )
    info = result.chains["eu"]
    assert (info["first_seq"], info["last_seq"]) == (5, 8)
    assert info["anchor_hash"] == AuditEvent.objects.using("eu").get(seq=4).hash
    directory = extract(out, tmp_path)
    verified = run_verifier(out, directory / "verify_bundle.py")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain eu: entries #5..#8 (4)" in verified.stdout
    # a forged anchor (as if the entries before were different) breaks the chain check
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["chains"]["eu"]["anchor_hash"] == info["anchor_hash"]


def test_export_is_itself_audited_in_the_control_chain(tmp_path):
    append("us", 4)
    bundle = export(tmp_path, database=["us"])
    event = AuditEvent.objects.using("default").filter(code=AuditCode.AUDIT_EXPORTED).get()
    assert event.actor_type == "system" and event.actor_id == "audit_export"
    assert event.payload["entries"] == 5
    assert event.payload["chains"] == {"us": [1, 5]}
    with zipfile.ZipFile(bundle) as archive:
        import hashlib

        assert (
            event.payload["manifest_sha256"]
            == hashlib.sha256(archive.read("manifest.json")).hexdigest()
        )
    assert AuditCheckpoint.objects.using("us").filter(size=4).exists()


def test_export_refuses_a_damaged_chain(tmp_path):
    from django.core.management import CommandError

    from tests.audit.helpers import tamper

    append("eu", 4)
    with tamper("eu") as cursor:
        cursor.execute("UPDATE audit_auditevent SET object_id = 'x' WHERE seq = 2")
    with pytest.raises(CommandError, match="entry #2 modified"):
        export(tmp_path, database=["eu"])
    assert not (tmp_path / "bundle.zip").exists()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_bundle_carries_the_witness_files_and_the_verifier_checks_them(tmp_path, settings):
    from compliance import crypto
    from compliance.audit.services.checkpoints import checkpoint_sign
    from compliance.audit.signing import checkpoint_message

    append("eu", 5)
    checkpoint_sign(using="eu")  # committed at once here: witnessed at once
    append("eu", 3)
    bundle = export(tmp_path, database=["eu"])  # signs and witnesses one more
    witness = Path(settings.COMPLIANCE_AUDIT_WITNESS_DIR)
    names = ["witness/eu/000000000001.json", "witness/eu/000000000002.json"]
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert set(names) <= set(manifest["files"])
        for name, number in zip(names, (1, 2), strict=True):
            on_disk = witness / "eu" / "00000000" / f"{number:012d}.json"
            assert archive.read(name) == on_disk.read_bytes()  # byte for byte
        assert json.loads(archive.read(names[1]))["size"] == 9  # the export's own checkpoint
    directory = extract(bundle, tmp_path)
    verifier = directory / "verify_bundle.py"
    for target in (bundle, directory):  # zip, and the extracted folder with its witness/ folder
        result = run_verifier(target, verifier)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "chain eu: 2 witnessed checkpoint(s) match the entries" in result.stdout

    def rewrite(name: str, doc: dict) -> None:
        """Replace a witness file, and make the manifest and its signature valid again."""
        path = directory / name
        path.write_bytes(json.dumps(doc).encode())
        manifest["files"][name] = {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size,
        }
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
        (directory / "manifest.json").write_bytes(raw)
        (directory / "manifest.sig").write_bytes(crypto.sign(message=raw))

    # a witness file whose first bytes changed (same statement): the next file's link breaks
    original = json.loads((directory / names[0]).read_text())
    rewrite(names[0], {**original, "note": "edited"})
    result = run_verifier(directory, verifier)
    assert result.returncode == 1
    assert f"{names[1]} does not link to {names[0]}" in result.stderr
    # a witnessed head that the entries do not have (even validly signed): rewritten
    (directory / names[1]).unlink()
    del manifest["files"][names[1]]
    forged = {**original, "head_hash": "ab" * 32}
    statement = {k: forged[k] for k in ("chain_id", "size", "head_hash", "signed_at", "key_id")}
    forged["signature"] = crypto.sign(message=checkpoint_message(**statement)).hex()
    rewrite(names[0], forged)
    result = run_verifier(directory, verifier)
    assert result.returncode == 1
    assert "entry #5 is not the head witnessed in witness/eu/000000000001.json" in result.stderr
