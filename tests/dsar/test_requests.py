"""Opening and acting on requests through the API: idempotency, policy, deadlines, misuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from compliance.audit.codes import AuditCode as C
from compliance.dsar.models import PrivacyRequest, RequestDirectory, Status
from compliance.dsar.services.errors import IllegalTransitionError
from compliance.dsar.services.holds import legal_hold_set
from compliance.dsar.services.maintenance import requests_flag_due
from compliance.dsar.services.transitions import request_transition
from tests.dsar.helpers import ACTOR, api_client, codes, officer_client, open_body, post_open
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _count_all() -> tuple[int, int, int]:
    return (
        RequestDirectory.objects.count(),
        PrivacyRequest.objects.using("eu").count(),
        PrivacyRequest.objects.using("us").count(),
    )


def test_open_erasure_waits_for_approval_in_subjects_region(django_capture_on_commit_callbacks):
    subject = SubjectFactory(email="ana@example.fr")
    _, http = api_client()
    response = post_open(http, open_body("ANA@example.fr", jurisdiction="US-CA"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["region"] == "eu"  # the subject's region wins over the request's jurisdiction
    assert body["status"] == "awaiting_approval"
    request = PrivacyRequest.objects.using("eu").get(pk=body["id"])
    assert request.subject_id == subject.pk
    assert "ana" not in str(request.identifier_indexes)  # blind indexes only
    assert request.due_at.date() == (request.received_at + timedelta(days=31)).date() or (
        request.due_at - request.received_at
    ).days in (28, 29, 30, 31)
    assert codes("eu", body["id"]) == [C.REQUEST_OPENED, C.REQUEST_STATUS_CHANGED] * 1 + [
        C.REQUEST_STATUS_CHANGED
    ]


def test_same_idempotency_key_same_body_returns_same_request():
    SubjectFactory(email="bo@example.de", jurisdiction="DE")
    _, http = api_client()
    first = post_open(http, open_body("bo@example.de"), key="k-1")
    second = post_open(http, open_body("bo@example.de"), key="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert _count_all()[0] == 1
    conflict = post_open(http, open_body("bo@example.de", type="access"), key="k-1")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert _count_all() == (1, 1, 0)


def test_unknown_identifiers_complete_with_no_data_held():
    _, http = api_client()
    response = post_open(http, open_body("nobody@example.com", type="access", jurisdiction="US-CA"))
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["region"], body["no_data_held"]) == ("completed", "us", True)
    package = http.get(f"/api/v1/requests/{body['id']}/package/")
    assert package.status_code == 409


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        ({"type": "forget_me"}, "type"),
        ({"identifiers": []}, "identifiers"),
        ({"identifiers": [{"type": "email", "value": "not-an-email"}]}, "identifiers[0].value"),
        ({"identifiers": [{"type": "passport", "value": "x"}]}, "identifiers"),
        ({"regulation": "hipaa"}, "regulation"),
        ({"verification_method": "trust_me"}, "verification_method"),
        ({"type": "objection"}, "purposes"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(mutate, field):
    SubjectFactory(email="cy@example.fr")
    _, http = api_client()
    before = (_count_all(), len(codes("eu")))
    response = post_open(http, {**open_body("cy@example.fr"), **mutate})
    assert response.status_code == 400, response.content
    assert any(name.startswith(field) for name in response.json()["error"]["fields"])
    assert (_count_all(), len(codes("eu"))) == before


def test_missing_idempotency_key_and_wrong_scope_are_refused():
    SubjectFactory(email="dee@example.fr")
    _, http = api_client()
    missing = http.post("/api/v1/requests/", open_body("dee@example.fr"), format="json")
    assert missing.status_code == 400
    assert "Idempotency-Key" in missing.json()["error"]["fields"]
    _, reader = api_client(scopes=["dsar:read"])
    assert post_open(reader, open_body("dee@example.fr")).status_code == 403
    assert _count_all() == (0, 0, 0)


def test_another_clients_request_is_404_and_list_is_own_only():
    SubjectFactory(email="eve@example.fr")
    _, mine = api_client()
    _, theirs = api_client()
    created = post_open(mine, open_body("eve@example.fr")).json()
    assert theirs.get(f"/api/v1/requests/{created['id']}/").status_code == 404
    assert theirs.post(f"/api/v1/requests/{created['id']}/cancel/").status_code == 404
    assert theirs.get("/api/v1/requests/").json()["results"] == []
    listed = mine.get("/api/v1/requests/?status=awaiting_approval&type=erasure&region=eu").json()
    assert [r["id"] for r in listed["results"]] == [created["id"]]
    assert mine.get("/api/v1/requests/?status=completed").json()["results"] == []
    assert mine.get("/api/v1/requests/?region=mars").status_code == 400


def test_approval_needs_privacy_officer_token(django_capture_on_commit_callbacks):
    SubjectFactory(email="fay@example.fr")
    _, http = api_client(scopes=["dsar:write", "dsar:read", "dsar:approve"])
    created = post_open(http, open_body("fay@example.fr")).json()
    refused = http.post(f"/api/v1/requests/{created['id']}/approve/")
    assert refused.status_code == 403
    _, officer = officer_client()  # privacy officers act on every client's requests
    with django_capture_on_commit_callbacks(using="eu") as callbacks:
        approved = officer.post(f"/api/v1/requests/{created['id']}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "processing"
    assert len(callbacks) == 1  # the erasure job, queued after commit
    assert approved.json()["approved_at"]


def test_legal_hold_blocks_approval_with_reason():
    subject = SubjectFactory(email="gil@example.fr")
    officer_api, officer = officer_client()
    officer_api.scopes = ["dsar:write", "dsar:read", "dsar:approve"]
    officer_api.save()
    created = post_open(officer, open_body("gil@example.fr")).json()
    legal_hold_set(region="eu", subject_id=subject.pk, reason="litigation 2024-17", actor=ACTOR)
    response = officer.post(f"/api/v1/requests/{created['id']}/approve/")
    assert response.status_code == 409
    assert "litigation 2024-17" in response.json()["error"]["message"]
    assert PrivacyRequest.objects.using("eu").get(pk=created["id"]).status == "awaiting_approval"
    assert C.LEGAL_HOLD_SET in codes("eu")


def test_auto_approval_by_method_and_hold_rejects(django_capture_on_commit_callbacks):
    subject = SubjectFactory(email="hal@example.fr")
    legal_hold_set(region="eu", subject_id=subject.pk, reason="tax audit", actor=ACTOR)
    _, http = api_client()
    with override_settings(COMPLIANCE_DSAR_AUTO_APPROVE_METHODS=["account_login"]):
        body = post_open(
            http, open_body("hal@example.fr", verification_method="account_login")
        ).json()
    assert body["status"] == "rejected"
    assert body["failure_reason"] == "legal hold: tax audit"
    SubjectFactory(email="ida@example.fr")
    with override_settings(COMPLIANCE_DSAR_AUTO_APPROVE_METHODS=["account_login"]):
        with django_capture_on_commit_callbacks(using="eu") as callbacks:
            body = post_open(
                http, open_body("ida@example.fr", verification_method="account_login")
            ).json()
    assert body["status"] == "processing" and len(callbacks) == 1


def test_reject_extend_cancel_and_illegal_transitions():
    SubjectFactory(email="jo@example.fr")
    officer_api, officer = officer_client()
    officer_api.scopes = ["dsar:write", "dsar:read", "dsar:approve"]
    officer_api.save()
    created = post_open(officer, open_body("jo@example.fr")).json()
    url = f"/api/v1/requests/{created['id']}/"
    assert officer.post(url + "extend/", {}, format="json").status_code == 400
    extended = officer.post(url + "extend/", {"reason": "complex request"}, format="json").json()
    assert extended["extended"] is True
    assert extended["due_at"] > created["due_at"]
    again = officer.post(url + "extend/", {"reason": "more"}, format="json")
    assert again.status_code == 409
    rejected = officer.post(url + "reject/", {"reason": "not verified"}, format="json").json()
    assert rejected["status"] == "rejected"
    assert officer.post(url + "cancel/").status_code == 409
    events = codes("eu", created["id"])
    assert events.count(C.REQUEST_EXTENDED) == 1
    from compliance.audit.models import AuditEvent

    terminal = AuditEvent.objects.using("eu").filter(
        object_id=created["id"], code=C.REQUEST_STATUS_CHANGED, payload__to="rejected"
    )
    assert terminal.get().payload["on_time"] is True
    request = PrivacyRequest.objects.using("eu").get(pk=created["id"])
    with pytest.raises(IllegalTransitionError):
        request_transition(request=request, to=Status.PROCESSING, actor=ACTOR)


def test_ccpa_deadline_is_45_days_and_extension_45_more():
    SubjectFactory(email="kim@example.com", jurisdiction="US-CA")
    officer_api, officer = officer_client()
    officer_api.scopes = ["dsar:write", "dsar:read", "dsar:approve"]
    officer_api.save()
    created = post_open(officer, open_body("kim@example.com", regulation="ccpa")).json()
    request = PrivacyRequest.objects.using("us").get(pk=created["id"])
    assert request.due_at - request.received_at == timedelta(days=45)
    officer.post(f"/api/v1/requests/{created['id']}/extend/", {"reason": "x"}, format="json")
    request.refresh_from_db(using="us")
    assert request.due_at - request.received_at == timedelta(days=90)


def test_daily_job_flags_due_soon_and_overdue_once():
    SubjectFactory(email="lou@example.fr")
    SubjectFactory(email="max@example.fr")
    _, http = api_client()
    soon = post_open(http, open_body("lou@example.fr")).json()
    late = post_open(http, open_body("max@example.fr")).json()
    now = timezone.now()
    PrivacyRequest.objects.using("eu").filter(pk=soon["id"]).update(due_at=now + timedelta(days=3))
    PrivacyRequest.objects.using("eu").filter(pk=late["id"]).update(due_at=now - timedelta(days=1))
    assert requests_flag_due(region="eu") == {"due_soon": 1, "overdue": 1}
    assert requests_flag_due(region="eu") == {"due_soon": 0, "overdue": 0}
    assert codes("eu", soon["id"]).count(C.REQUEST_DUE_FLAGGED) == 1
    assert codes("eu", late["id"]).count(C.REQUEST_DUE_FLAGGED) == 1
