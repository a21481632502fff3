"""Staff users in a role group (privacy officer by default)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from compliance.roles import PRIVACY_OFFICER, roles_sync
from tests.factories.base import ServiceFactory


class StaffFactory(ServiceFactory):
    """A staff user in ``group`` (``None``: no group), loaded afresh so its permission cache
    is empty. Without ``password`` the user cannot log in with one (and nothing is hashed)."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"staff{n}")
    group = PRIVACY_OFFICER
    password = None

    @classmethod
    def _create(cls, model_class, *, username, group, password):
        user = model_class.objects.create_user(username=username, password=password, is_staff=True)
        if group:
            if not Group.objects.filter(name=group).exists():
                roles_sync()  # a flushed database (transactional test) before post_migrate
            user.groups.add(Group.objects.get(name=group))
        return model_class.objects.get(pk=user.pk)
