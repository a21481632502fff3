"""Scope checks: every view names ``required_scopes`` (a dict method -> scope, or one scope)."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from compliance.models import ApiClient


class HasRequiredScope(permissions.BasePermission):
    """A view without ``required_scopes`` is refused: no endpoint is open by accident."""

    def has_permission(self, request, view) -> bool:
        client = request.auth
        if not isinstance(client, ApiClient):
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <token>'.")
        scope = required_scope(view=view, method=request.method)
        if scope is None:
            raise exceptions.PermissionDenied("This endpoint declares no scope; access refused.")
        if not client.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API client lacks the scope '{scope}'.")
        return True


def required_scope(*, view, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None)
    if isinstance(scopes, str):
        return scopes
    if isinstance(scopes, dict):
        return scopes.get(method) or scopes.get("*")
    return None


class ActsAsGroupMember(permissions.BasePermission):
    """The token must be tied to an active staff user in ``view.required_group``."""

    def has_permission(self, request, view) -> bool:
        group = view.required_group
        user = request.user
        if user is None or not user.is_active or not user.is_staff:
            raise exceptions.PermissionDenied(
                f"This action needs a token tied to a staff user in the '{group}' group."
            )
        if not user.groups.filter(name=group).exists():
            raise exceptions.PermissionDenied(f"The token's user is not in the '{group}' group.")
        return True
