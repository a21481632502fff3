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
