"""Jobs around requests: packages removed at expiry (audited), failure after the retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.dsar.models import Package, PrivacyRequest, Status
from compliance.dsar.services import processing
from compliance.dsar.services.export import packages_expire, request_export_run
from compliance.dsar.tasks import MAX_RETRIES, request_process
from tests.dsar.helpers import api_client, open_body, post_open
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def _open(http, email: str, type: str = "portability") -> PrivacyRequest:
    response = post_open(http, open_body(email, type=type))
    assert response.status_code == 201, response.json()
    return PrivacyRequest.objects.using("eu").get(pk=response.json()["id"])


def test_expired_package_is_deleted_audited_and_gone_from_the_api(
    django_capture_on_commit_callbacks,
):
    SubjectFactory(email="pia@example.fr")
    _, http = api_client()
    with django_capture_on_commit_callbacks(using="eu"):
        request = _open(http, "pia@example.fr")
    request_export_run(region="eu", request_id=request.pk)
    package = Package.objects.using("eu").get(request_id=request.pk)
    assert http.get(f"/api/v1/requests/{request.pk}/package/").status_code == 200

    assert packages_expire(region="eu", now=package.expires_at - timedelta(seconds=1)) == 0
    assert packages_expire(region="eu", now=package.expires_at) == 1
    assert not Package.objects.using("eu").filter(request_id=request.pk).exists()
    expired = AuditEvent.objects.using("eu").get(code=AuditCode.PACKAGE_EXPIRED)
    assert expired.object_id == str(request.pk) and expired.subject_token
    gone = http.get(f"/api/v1/requests/{request.pk}/package/")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired"
    assert packages_expire(region="eu", now=package.expires_at) == 0  # idempotent


def test_job_failing_after_its_retries_lands_in_failed_with_the_reason(
    monkeypatch, django_capture_on_commit_callbacks
):
    SubjectFactory(email="quin@example.fr")
    _, http = api_client()
    with django_capture_on_commit_callbacks(using="eu"):
        request = _open(http, "quin@example.fr", type="access")
    assert request.status == Status.PROCESSING
    attempts = []

    def broken(*, region, request_id):
        attempts.append(request_id)
        raise RuntimeError("region database unreachable")

    monkeypatch.setattr(processing, "request_process", broken)
    request_process.apply(kwargs={"region": "eu", "request_id": str(request.pk)})
    assert len(attempts) == MAX_RETRIES + 1  # first try and every retry
    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert "RuntimeError: region database unreachable" in request.failure_reason
    changes = AuditEvent.objects.using("eu").filter(code=AuditCode.REQUEST_STATUS_CHANGED)
    assert changes.filter(payload__to="failed").count() == 1
    detail = http.get(f"/api/v1/requests/{request.pk}/").json()
    assert detail["status"] == "failed"
