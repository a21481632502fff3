"""Every officer action for every role (Django test client): allowed ones change state through
the owning service and are audited; refused ones answer 403 and change nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import PrivacyRequest
from segments.models import Segment
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.factories import PrivacyRequestFactory, SegmentFactory, StaffFactory

pytestmark = pytest.mark.django_db(databases="__all__")

ALLOWED = {
    "officer": {
        "approve",
        "reject",
        "extend",
        "segment_approve",
        "segment_activate",
        "segment_pause",
        "segment_review",
        "subject_lookup",
        "evidence_download",
        "queue",
        "dashboard",
    },
    "support": {"subject_lookup", "queue", "dashboard"},
    "auditor": {"evidence_download", "queue", "dashboard"},  # no decrypted personal data
    "nobody": set(),  # staff without a role
}
ACTIONS = sorted(ALLOWED["officer"])


def _segment_state(key):
    seg = Segment.objects.get(key=key)
    return seg.status, seg.last_reviewed_at


@pytest.fixture
def world():
    author = StaffFactory(username="author", group=ROLE_USERS["officer"], password=PASSWORD)
    return {
        "request": PrivacyRequestFactory(email="ada@example.fr"),
        "draft": SegmentFactory(user=author, status="draft", key="draft-seg"),
        "approved": SegmentFactory(user=author, key="approved-seg", status="approved"),
        "active": SegmentFactory(user=author, key="active-seg", status="active"),
    }


def _do(client: Client, action: str, world) -> tuple[int, object]:
    """Run ``action``; return the status code and a probe of the state it should change."""
    r = world["request"]
    base = f"/admin/officer/requests/{r.pk}/"
    probe_request = lambda: PrivacyRequest.objects.using("eu").get(pk=r.pk)  # noqa: E731
    if action == "approve":  # an erasure: through the confirmation step, reference typed
        reference = str(r.pk).replace("-", "")[:8].upper()
        resp = client.post(base + "approve/confirm/", {"reference": reference})
        return resp.status_code, probe_request().status
    if action == "reject":
        resp = client.post(base + "reject/", {"reason": "identity not proven"})
        return resp.status_code, probe_request().status
    if action == "extend":
        resp = client.post(base + "extend/", {"reason": "complex request"})
        return resp.status_code, probe_request().extended
    if action.startswith("segment_"):
        verb = action.removeprefix("segment_")
        key = {"approve": "draft-seg", "activate": "approved-seg"}.get(verb, "active-seg")
        resp = client.post(f"/admin/officer/segments/{key}/{verb}/")
        return resp.status_code, _segment_state(key)
    if action == "subject_lookup":
        resp = client.post(
            "/admin/officer/subjects/", {"identifier_type": "email", "value": "ada@example.fr"}
        )
        viewed = AuditEvent.objects.using("eu").filter(code=AuditCode.PERSONAL_DATA_VIEWED)
        return resp.status_code, viewed.count()
    if action == "evidence_download":
        resp = client.get(
            "/admin/audit/auditevent/export/?from=2020-01-01&to=2100-01-01&download=1"
        )
        return resp.status_code, resp.get("Content-Type")
    if action == "queue":
        return client.get("/admin/officer/queue/").status_code, None
    if action == "dashboard":
        return client.get("/admin/officer/dashboard/").status_code, None
    raise AssertionError(action)


def _before(action, world):
    r = PrivacyRequest.objects.using("eu").get(pk=world["request"].pk)
    return {
        "approve": r.status,
        "reject": r.status,
        "extend": r.extended,
        "segment_approve": _segment_state("draft-seg"),
        "segment_activate": _segment_state("approved-seg"),
        "segment_pause": _segment_state("active-seg"),
        "segment_review": _segment_state("active-seg"),
        "subject_lookup": 0,
    }.get(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ["officer", "support", "auditor", "nobody"])
def test_action_matrix(client, world, role, action):
    user = StaffFactory(username=f"u-{role}", group=ROLE_USERS.get(role), password=PASSWORD)
    client.force_login(user)
    before = _before(action, world)
    status, after = _do(client, action, world)
    if action not in ALLOWED[role]:
        assert status == 403, f"{role} {action}"
        assert after == before or action in ("evidence_download", "queue", "dashboard")
        return
    assert status in (200, 302), f"{role} {action}: {status}"
    expected_change = {
        "approve": "processing",
        "reject": "rejected",
        "extend": True,
        "segment_approve": ("approved", None),
        "segment_activate": ("active", None),
        "segment_pause": ("paused", None),
        "subject_lookup": 1,
        "evidence_download": "application/zip",
    }
    if action == "segment_review":
        assert after[1] is not None and after[1] != before[1]
    elif action in expected_change:
        assert after == expected_change[action], f"{role} {action}"


def test_refused_post_writes_no_audit_event(client, world):
    client.force_login(StaffFactory(username="sa", group=ROLE_USERS["support"], password=PASSWORD))
    before = AuditEvent.objects.using("eu").count(), AuditEvent.objects.using("default").count()
    for verb in ("approve", "reject", "extend"):
        assert (
            client.post(
                f"/admin/officer/requests/{world['request'].pk}/{verb}/", {"reason": "x"}
            ).status_code
            == 403
        )
    for verb in ("approve", "activate", "pause", "review"):
        assert client.post(f"/admin/officer/segments/active-seg/{verb}/").status_code == 403
    after = AuditEvent.objects.using("eu").count(), AuditEvent.objects.using("default").count()
    assert after == before


def test_actions_are_post_only(client, world):
    client.force_login(StaffFactory(username="po", group=ROLE_USERS["officer"], password=PASSWORD))
    assert client.get(f"/admin/officer/requests/{world['request'].pk}/approve/").status_code == 405
    assert client.get("/admin/officer/segments/draft-seg/approve/").status_code == 405


def test_anonymous_is_sent_to_the_login_form(client, world):
    for url in ("/admin/", "/admin/officer/queue/", "/admin/officer/subjects/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(f"/admin/officer/requests/{world['request'].pk}/approve/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert PrivacyRequest.objects.using("eu").get(pk=world["request"].pk).status == (
        "awaiting_approval"
    )


@pytest.mark.parametrize("role", ["support", "auditor"])
def test_model_admin_actions_hidden_and_refused(client, world, role):
    """The plain model admins too: no approve action, and posting it changes nothing."""
    client.force_login(
        StaffFactory(username=f"u-{role}", group=ROLE_USERS[role], password=PASSWORD)
    )
    page = client.get("/admin/dsar/privacyrequest/?region=eu").content.decode()
    assert "approve_selected" not in page
    client.post(
        "/admin/dsar/privacyrequest/?region=eu",
        {"action": "approve_selected", "_selected_action": [str(world["request"].pk)]},
    )
    assert PrivacyRequest.objects.using("eu").get(pk=world["request"].pk).status == (
        "awaiting_approval"
    )
    page = client.get("/admin/segments/segment/").content.decode()
    for action in ("approve", "activate", "pause", "mark_reviewed"):
        assert f'value="{action}"' not in page
    client.post(
        "/admin/segments/segment/",
        {"action": "approve", "_selected_action": [str(world["draft"].pk)]},
    )
    assert Segment.objects.get(key="draft-seg").status == "draft"


@pytest.mark.parametrize(
    ("role", "offered"), [("officer", True), ("support", True), ("auditor", False)]
)
def test_package_download_action_only_for_those_who_handle_requests(client, world, role, offered):
    client.force_login(
        StaffFactory(username=f"u-{role}", group=ROLE_USERS[role], password=PASSWORD)
    )
    page = client.get("/admin/dsar/privacyrequest/?region=eu").content.decode()
    assert ('value="download_package"' in page) is offered
