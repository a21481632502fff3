"""The audit chain: one hash chain per database (control and each region)."""

from __future__ import annotations

from django.db import models

from compliance.residency import PerDatabaseModel


class AuditEvent(PerDatabaseModel):
    """One entry. ``hash`` = SHA-256(previous hash || canonical entry), see ``hashing``.

    No personal data: subjects appear only as their random ``subject_token``.
    """

    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    code = models.PositiveIntegerField(db_index=True)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    subject_token = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        permissions = [("export_auditevent", "Can export audit evidence bundles")]
        # tokens are matched whole: one plain b-tree (``db_index`` would add a LIKE index too)
        indexes = [models.Index(fields=["subject_token"], name="audit_subject_token")]

    def __str__(self) -> str:
        return f"#{self.seq} code {self.code}"


class AuditChainHead(PerDatabaseModel):
    """The chain's current size and head hash; its row lock serialises appends."""

    chain_id = models.CharField(max_length=32, primary_key=True)
    size = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.chain_id} @ {self.size}"


class AuditCheckpoint(PerDatabaseModel):
    """A signed statement "chain ``chain_id`` had ``size`` entries with head ``head_hash``".

    ``signature`` is Ed25519 (hex of the raw 64 bytes) over ``signing.checkpoint_message``.
    Append-only like the entries (PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE).
    """

    chain_id = models.CharField(max_length=32)
    size = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["size", "id"]
        indexes = [models.Index(fields=["chain_id", "size"])]

    def __str__(self) -> str:
        return f"checkpoint {self.chain_id} @ {self.size}"
