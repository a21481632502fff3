"""Permission checks of the officer pages: every view and every POST names its permission.

The admin's ``admin_view`` wrapper already demands an active staff user; these checks add the
model permission each page or action needs and answer 403 otherwise.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

VIEW_REQUESTS = "dsar.view_privacyrequest"
APPROVE_REQUESTS = "dsar.approve_privacyrequest"  # approve, reject and extend
OPEN_REQUESTS = "dsar.add_privacyrequest"  # intake in the admin (support agents, officers)
HANDLE_REQUESTS = "dsar.change_privacyrequest"  # notes, assignment, packages
VIEW_IDENTITIES = "compliance.view_identity"  # decrypted identifiers in the subject lookup
VIEW_SEGMENTS = "segments.view_segment"
VIEW_PLANS = "plans.view_trackingplan"  # tracking plans and the instrumentation audit
SEGMENT_ACTIONS = {
    "approve": "segments.approve_segment",
    "activate": "segments.activate_segment",
    "pause": "segments.activate_segment",
    "review": "segments.review_segment",
}
EXPORT_EVIDENCE = "audit.export_auditevent"
VIEW_AUDIT = "audit.view_auditevent"


def require(request, permission: str) -> None:
    """Raise ``PermissionDenied`` (403) unless the user holds ``permission``."""
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"needs the permission {permission}")


def is_officer(user) -> bool:
    """Whoever may approve requests gets the DSAR queue as the admin's front page."""
    return user.is_active and user.is_staff and user.has_perm(APPROVE_REQUESTS)
