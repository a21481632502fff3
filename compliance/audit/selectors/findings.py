"""What ``chain_verify`` reports: its findings, the signed claims it checks the walk against,
and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from compliance.audit.hashing import GENESIS
from compliance.audit.models import AuditCheckpoint

#: a head no entry can have: two claims disagree about one size, so the walk must stop there
CONFLICT = ""


@dataclass(frozen=True)
class Finding:
    kind: str
    seq: int
    detail: str

    def describe(self, chain_id: str) -> str:
        return f"chain {chain_id}: entry #{self.seq} {self.kind}: {self.detail}"


@dataclass(frozen=True)
class HeadClaim:
    """A signed statement that entry ``size`` has hash ``head_hash``; ``source`` is ``table``,
    ``chain`` (recorded by a ``CHECKPOINT_SIGNED`` entry) or ``witness``."""

    source: str
    size: int
    head_hash: str
    label: str
    checkpoint: AuditCheckpoint | None = None


@dataclass
class ChainVerification:
    chain_id: str
    using: str
    entries: int = 0
    start_seq: int = 1
    last_seq: int = 0
    last_hash: str = GENESIS
    head_size: int = 0
    checkpoints: int = 0
    last_checkpoint: AuditCheckpoint | None = None
    recorded: int = 0
    witnessed: int | None = None
    witness_seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_finding(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.seq) if self.findings else None


def removed(expected: int, seq: int) -> Finding:
    """Entry ``expected`` (up to ``seq - 1``) is missing; ``seq`` is the next present one."""
    return Finding(
        "removed",
        expected,
        f"entries #{expected}..#{seq - 1} are missing (next present entry is #{seq})"
        if seq - 1 > expected
        else f"entry #{expected} is missing (next present entry is #{seq})",
    )
