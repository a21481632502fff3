"""Staff roles and exactly the permissions each has.

* ``Privacy officer``: everything on the toolkit's own models, approvals included; the audit
  log stays read-only for everyone (export allowed).
* ``Support agent``: reads, and opens and tracks requests (add/change/view of requests);
  never ``approve_*`` (no erasure or segment approvals), never deletes.
* ``Auditor``: ``view_*`` and the export permission; never add, change or delete; and never
  a person's decrypted data (identities, events, export packages): auditors check the
  process, not the people in it.

Groups are created by a migration and their permissions re-synced after every ``migrate``
(permissions of later apps only exist once those apps migrated).
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db.models.signals import post_migrate
from django.dispatch import receiver

PRIVACY_OFFICER = "Privacy officer"
SUPPORT_AGENT = "Support agent"
AUDITOR = "Auditor"
ROLES = (PRIVACY_OFFICER, SUPPORT_AGENT, AUDITOR)

TOOLKIT_APPS = (
    "compliance",
    "audit",
    "consent",
    "dsar",
    "segments",
    "retention",
    "feed",
    "plans",
)
AUDIT_READ_ONLY_APP = "audit"
EXPORT_PERMISSIONS = {("audit", "export_auditevent")}
SUPPORT_WRITE_MODELS = {"privacyrequest"}
#: views that show a person's decrypted data; auditors do not get them
PERSONAL_DATA_VIEWS = {
    ("compliance", "view_identity"),
    ("events", "view_event"),
    ("dsar", "view_package"),
}


def role_allows(*, role: str, app_label: str, codename: str) -> bool:
    """Whether ``role`` holds permission ``app_label.codename``."""
    if app_label not in TOOLKIT_APPS:
        return False
    action, _, model = codename.partition("_")
    if (app_label, codename) in EXPORT_PERMISSIONS:
        return role in (PRIVACY_OFFICER, AUDITOR)
    if action == "view":
        return not (role == AUDITOR and (app_label, codename) in PERSONAL_DATA_VIEWS)
    if role == AUDITOR:
        return False
    if app_label == AUDIT_READ_ONLY_APP:
        return False
    if role == PRIVACY_OFFICER:
        return True
    # support agent
    return action in ("add", "change") and model in SUPPORT_WRITE_MODELS


def roles_sync(*, apps=None) -> None:
    """Create the three groups and set exactly their permissions (idempotent)."""
    registry = apps or global_apps
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    permissions = list(
        Permission.objects.using("default")
        .select_related("content_type")
        .filter(content_type__app_label__in=TOOLKIT_APPS)
    )
    for role in ROLES:
        group, _ = Group.objects.using("default").get_or_create(name=role)
        allowed = [
            p
            for p in permissions
            if role_allows(role=role, app_label=p.content_type.app_label, codename=p.codename)
        ]
        group.permissions.set(allowed)


@receiver(post_migrate)
def _sync_roles_after_migrate(sender, using="default", **kwargs) -> None:
    """After the last app's post_migrate on ``default``: every permission exists by then."""
    last = list(global_apps.get_app_configs())[-1]
    if using == "default" and sender.label == last.label:
        roles_sync()
