"""Admin edits of the global configuration are audited; demo loading is idempotent."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent import demo
from compliance.consent.models import ConsentEvent, NoticeVersion, Purpose
from compliance.roles import AUDITOR, PRIVACY_OFFICER
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db(databases="__all__")


def staff(client, group: str):
    user = get_user_model().objects.create_user(username=group.replace(" ", ""), is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def test_privacy_officer_changes_purpose_audited_and_version_bumped(client):
    staff(client, PRIVACY_OFFICER)
    purpose = Purpose.objects.get(key="measurement")
    url = f"/admin/consent/purpose/{purpose.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {
        name: form.initial.get(name) for name in form.fields if form.initial.get(name) is not None
    }
    for name in ("lawful_bases", "consent_required_in", "tcf_purposes", "tcf_special_features",
                 "consent_mode_types"):  # fmt: skip
        data[name] = form.fields[name].prepare_value(form.initial[name])
    data["default_expiry_days"] = 180
    data["is_active"] = "on"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    purpose.refresh_from_db()
    assert (purpose.default_expiry_days, purpose.version) == (180, 2)
    audit = AuditEvent.objects.using("default").get(code=AuditCode.PURPOSE_CHANGED)
    assert audit.object_id == "measurement"
    assert "default_expiry_days" in audit.payload["fields"]


def test_auditor_cannot_change_purpose(client):
    staff(client, AUDITOR)
    purpose = Purpose.objects.get(key="measurement")
    assert client.get(f"/admin/consent/purpose/{purpose.pk}/change/").status_code == 200
    response = client.post(f"/admin/consent/purpose/{purpose.pk}/change/", {"name": "x"})
    assert response.status_code == 403


def test_demo_load_is_idempotent():
    out = io.StringIO()
    demo.load(actor=ACTOR, stdout=out)
    first = ConsentEvent.objects.using("eu").count() + ConsentEvent.objects.using("us").count()
    demo.load(actor=ACTOR, stdout=out)
    second = ConsentEvent.objects.using("eu").count() + ConsentEvent.objects.using("us").count()
    assert first == second > 0
    assert NoticeVersion.objects.count() == 1
    assert AuditEvent.objects.using("default").filter(code=AuditCode.NOTICE_PUBLISHED).count() == 1
    assert ConsentEvent.objects.using("us").filter(method="gpc_header").count() == 2
