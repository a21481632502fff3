"""What every read-only admin page shares."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """No add, change or delete in the admin: rows change only through services (audited)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
