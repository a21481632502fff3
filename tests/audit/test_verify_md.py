"""VERIFY.md works as written: its commands, run verbatim from the folder holding the zip in a
clean directory, with only the system's ``python3`` and ``openssl`` (no virtualenv)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from compliance.audit.services.export import verify_commands
from tests.audit.helpers import append

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.skipif(
        not (Path("/usr/bin/python3").exists() and shutil.which("openssl", path="/usr/bin:/bin")),
        reason="needs the system's python3 and openssl",
    ),
]
SYSTEM_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}


def _export(folder: Path) -> tuple[Path, str]:
    append("eu", 3)
    append("default", 2)
    out = io.StringIO()
    bundle = folder / "evidence.zip"
    call_command(
        "audit_export",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--out",
        str(bundle),
        stdout=out,
    )
    return bundle, out.getvalue()


def _commands(verify_md: str) -> list[str]:
    return [
        line
        for block in re.findall(r"```sh\n(.*?)```", verify_md, flags=re.S)
        for line in block.strip().splitlines()
    ]


def test_verify_md_commands_run_verbatim_with_system_python_and_openssl(tmp_path):
    clean = tmp_path / "reviewer"
    clean.mkdir()
    bundle, printed = _export(clean)
    with zipfile.ZipFile(bundle) as archive:
        verify_md = archive.read("VERIFY.md").decode()
    commands = _commands(verify_md)
    assert commands == list(verify_commands(bundle_name="evidence.zip").values())
    for command in commands:  # audit_export prints the same commands
        assert f"  {command}\n" in printed
    assert sorted(os.listdir(clean)) == ["evidence.zip"]
    script = "set -e\n" + "\n".join(commands) + "\n"
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        cwd=clean,
        env=SYSTEM_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout
    assert "DIFFERS" not in result.stdout
    assert re.search(r"^entries\.jsonl OK$", result.stdout, flags=re.M)
    assert "BUNDLE VERIFIED" in result.stdout


def test_openssl_route_needs_no_python_package_and_finds_a_changed_file(tmp_path):
    clean = tmp_path / "reviewer"
    clean.mkdir()
    bundle, _ = _export(clean)
    commands = verify_commands(bundle_name="evidence.zip")
    subprocess.run(
        ["/bin/sh", "-c", commands["unpack"]],
        cwd=clean,
        env=SYSTEM_ENV,
        check=True,
        capture_output=True,
    )
    folder = clean / "bundle"
    isolated = {**SYSTEM_ENV, "PYTHONNOUSERSITE": "1"}
    # python3 -S: no site-packages at all, only the standard library
    hashes = commands["hashes"].replace("python3 -c", "python3 -S -c", 1)
    ok = subprocess.run(
        ["/bin/sh", "-c", hashes], cwd=folder, env=isolated, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    with open(folder / "entries.csv", "a") as handle:
        handle.write("forged\n")
    changed = subprocess.run(
        ["/bin/sh", "-c", hashes], cwd=folder, env=isolated, capture_output=True, text=True
    )
    assert changed.returncode == 1
    assert "entries.csv DIFFERS" in changed.stdout
    signature = subprocess.run(
        ["/bin/sh", "-c", commands["openssl"]],
        cwd=folder,
        env=SYSTEM_ENV,
        capture_output=True,
        text=True,
    )
    assert "Signature Verified Successfully" in signature.stdout


def test_verifier_without_cryptography_says_so_in_one_line(tmp_path):
    clean = tmp_path / "reviewer"
    clean.mkdir()
    bundle, _ = _export(clean)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(clean / "bundle")
    result = subprocess.run(
        ["/usr/bin/python3", "-S", "verify_bundle.py", "."],
        cwd=clean / "bundle",
        env=SYSTEM_ENV,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs the Python package 'cryptography'" in lines[0]
    assert "Traceback" not in result.stderr
