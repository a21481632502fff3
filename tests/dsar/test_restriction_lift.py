"""A restriction holds until a privacy officer lifts it (admin action, audited); then the
person may enter segments again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.dsar.models import Restriction
from compliance.roles import PRIVACY_OFFICER, SUPPORT_AGENT
from segments.services.memberships import memberships_apply
from tests.factories import SegmentFactory, StaffFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = Actor.system("test")
RESTRICTIONS = "/admin/dsar/restriction/?region=eu"


def login(client, group: str) -> None:
    user = User.objects.create_user(username=f"u-{group[:3]}", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)


def test_officer_lifts_a_restriction_and_the_person_may_enter_again(client):
    seg = SegmentFactory(user=StaffFactory(username="owner"))
    person = SubjectFactory(consented=True)
    restriction = Restriction.objects.using("eu").create(subject_id=person.pk)
    refused = memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    assert refused.refused == {person.pk: "restriction"}

    login(client, SUPPORT_AGENT)
    client.post(RESTRICTIONS, {"action": "lift", "_selected_action": [restriction.pk]})
    assert Restriction.objects.using("eu").get(pk=restriction.pk).active  # not theirs to lift

    login(client, PRIVACY_OFFICER)
    page = client.post(
        RESTRICTIONS, {"action": "lift", "_selected_action": [restriction.pk]}, follow=True
    )
    assert "Lifted 1 restriction" in page.content.decode()
    restriction.refresh_from_db()
    assert not restriction.active and restriction.lifted_at is not None
    lifted = AuditEvent.objects.using("eu").get(code=AuditCode.RESTRICTION_LIFTED)
    assert lifted.subject_token == person.audit_token and lifted.actor_type == "user"

    entered = memberships_apply(segment=seg, enters=[person.pk], exits=[], actor=ACTOR)
    assert entered.entered == [person.pk] and not entered.refused
