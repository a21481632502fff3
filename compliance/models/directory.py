"""Control-side directory: blind index -> region and subject id (no plaintext identifiers)."""

from __future__ import annotations

from django.db import models

from compliance.residency import GlobalModel


class SubjectDirectory(GlobalModel):
    """Where a subject lives. A keyed blind index is pseudonymous data: erasure removes the row."""

    blind_index = models.CharField(max_length=64, unique=True)
    identifier_type = models.CharField(max_length=16)
    region = models.CharField(max_length=16)
    subject_id = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "subject directory"

    def __str__(self) -> str:
        return f"{self.identifier_type} -> {self.region}"


class SuppressedIdentifier(GlobalModel):
    """The control database's copy of every region's suppression list: the blind index of an
    erased identifier and the region that erased it (no value, no subject id), so re-ingestion
    is refused without asking any region. Written with the regional ``Suppression`` row and in
    the statement that removes the directory row; append-only for the runtime role."""

    blind_index = models.CharField(max_length=64, unique=True)
    region = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "suppressed identifiers"

    def __str__(self) -> str:
        return f"suppressed in {self.region}"
