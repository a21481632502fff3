"""Secrets for the embedded default: read from the environment, or generated once into ``var/``.

Production never reaches the generator: ``config.settings_production`` requires every secret
from the environment. The embedded default writes ``var/secrets.json`` (mode 0600) on first
use and prints a notice to stderr saying so.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

#: environment variable -> how a fresh local value is made
SECRET_GENERATORS = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
    # 32 random bytes; HKDF derives region key-encryption keys and the blind-index key from it.
    "COMPLIANCE_ROOT_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    # Ed25519 private key as its 32-byte seed, base64.
    "COMPLIANCE_SIGNING_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
}


def local_secrets(*, var_dir: Path) -> dict[str, str]:
    """Return every secret: environment first, else ``var/secrets.json``, generated if missing."""
    missing = [name for name in SECRET_GENERATORS if not os.environ.get(name)]
    values = {name: os.environ[name] for name in SECRET_GENERATORS if os.environ.get(name)}
    if not missing:
        return values
    path = var_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    created = [name for name in missing if name not in stored]
    if created:
        for name in created:
            stored[name] = SECRET_GENERATORS[name]()
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        os.replace(tmp, path)
        print(
            f"NOTICE: generated local secrets {', '.join(created)} into {path}. "
            "They are for this machine only; set them from the environment in production.",
            file=sys.stderr,
        )
    values.update({name: stored[name] for name in missing})
    return values
