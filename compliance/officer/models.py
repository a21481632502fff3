"""The officer's working records on a request (regional, beside the request they are about).

* ``RequestNote``: an internal note by staff (audited ``REQUEST_NOTE_ADDED`` without its text);
  never exported to the person, removed with the person's data on erasure.
* ``RequestAssignment``: who works the request now (audited ``REQUEST_ASSIGNED``).

Users are global: a regional row keeps the user's pk and username as plain columns.
"""

from __future__ import annotations

from django.db import models

from compliance.residency import RegionalModel


class RequestNote(RegionalModel):
    request_id = models.UUIDField(db_index=True)
    #: the request's subject when the note was written (erasure removes the note with it)
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)
    author_id = models.BigIntegerField(null=True, blank=True)
    author_username = models.CharField(max_length=150)
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note by {self.author_username} on {self.request_id}"


class RequestAssignment(RegionalModel):
    request_id = models.UUIDField(unique=True)
    assignee_id = models.BigIntegerField(null=True, blank=True)
    assignee_username = models.CharField(max_length=150, blank=True)
    assigned_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.request_id} -> {self.assignee_username or 'nobody'}"
