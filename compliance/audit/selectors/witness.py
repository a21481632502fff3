"""Reading a witness directory back (``services.witness`` writes it): the witnessed
checkpoints of one chain, in file order, with what is wrong with the files themselves."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from compliance.audit.services.witness import WITNESS_FORMAT, file_name


@dataclass(frozen=True)
class Witnessed:
    """One witnessed checkpoint: ``file`` is its file name (``000000000007.json``)."""

    file: str
    number: int
    size: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str

    @property
    def key(self) -> tuple:
        return (self.size, self.head_hash, self.signed_at, self.key_id, self.signature)


@dataclass
class WitnessLog:
    chain_id: str
    checkpoints: list[Witnessed] = field(default_factory=list)
    #: ``(size or 0, message)``: files that do not read, link or belong as they should
    problems: list[tuple[int, str]] = field(default_factory=list)


def witness_files(*, root: Path, chain_id: str) -> list[tuple[str, Path]]:
    """``(file name, path)`` of every witness file of ``chain_id``, in number order."""
    chain_dir = Path(root) / chain_id
    if not chain_dir.is_dir():
        return []
    found = []
    for shard in sorted(chain_dir.iterdir()):
        if shard.is_dir():
            found.extend(
                (name, shard / name) for name in sorted(os.listdir(shard)) if name.endswith(".json")
            )
    return found


def witness_read(*, root: Path, chain_id: str) -> WitnessLog:
    """Every witnessed checkpoint of ``chain_id`` under ``root``, checking that the files form
    one unbroken chain (numbers 1, 2, ...; each names its predecessor's file and SHA-256) and
    belong to the chain. A file that does not parse is a problem and is left out."""
    log = WitnessLog(chain_id=chain_id)
    previous: tuple[str, bytes] | None = None
    expected = 1
    for name, path in witness_files(root=root, chain_id=chain_id):
        data = path.read_bytes()
        try:
            doc = json.loads(data)
            item = Witnessed(
                file=name,
                number=int(doc["number"]),
                size=int(doc["size"]),
                head_hash=str(doc["head_hash"]),
                signed_at=str(doc["signed_at"]),
                key_id=str(doc["key_id"]),
                signature=str(doc["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.problems.append((0, f"witness file {name} does not read: {exc}"))
            previous = (name, data)
            continue
        if doc.get("format") != WITNESS_FORMAT or doc.get("chain_id") != chain_id:
            log.problems.append((item.size, f"witness file {name} is not of chain {chain_id}"))
        if name != file_name(item.number) or item.number != expected:
            log.problems.append(
                (item.size, f"witness file {name}: number {item.number}, expected {expected}")
            )
        link = doc.get("previous")
        if previous is None:
            if item.number != 1 or link is not None:
                log.problems.append((item.size, f"witness file {name}: its predecessor is gone"))
        elif (
            not isinstance(link, dict)
            or link.get("file") != previous[0]
            or link.get("sha256") != hashlib.sha256(previous[1]).hexdigest()
        ):
            log.problems.append(
                (item.size, f"witness file {name} does not link to {previous[0]} as it is now")
            )
        log.checkpoints.append(item)
        previous = (name, data)
        expected = item.number + 1
    return log
