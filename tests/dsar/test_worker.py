"""End to end with a real Celery worker: erasure and portability through the API, a worker
killed mid-erasure, signed status callbacks to a local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.conf import settings
from django.db import connections

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.dsar.models import ErasureStep, PrivacyRequest
from compliance.dsar.services.maintenance import requests_resume_stuck
from compliance.dsar.services.receipts import receipt_verify
from compliance.personal_data import personal_data_models
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from tests.conftest import wait_for
from tests.dsar.helpers import (
    ACTOR,
    api_client,
    officer_client,
    open_body,
    person,
    post_open,
    verify_chain,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


def _rows_of(subject_ids) -> dict:
    found = {}
    for alias in settings.DATABASES:
        names = connections[alias].introspection.table_names()
        with connections[alias].cursor() as cursor:
            for entry in personal_data_models():
                table = entry.model._meta.db_table
                if table not in names:
                    continue
                column = entry.model._meta.get_field(entry.subject_field).column
                for sid in subject_ids:
                    value = sid.hex if connections[alias].vendor == "sqlite" else sid
                    cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = %s", [value])
                    count = cursor.fetchone()[0]
                    if count:
                        found[(alias, table)] = count
            cursor_table = "compliance_subjectdirectory"
            if cursor_table in names:
                for sid in subject_ids:
                    value = sid.hex if connections[alias].vendor == "sqlite" else sid
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {cursor_table} WHERE subject_id = %s", [value]
                    )
                    if cursor.fetchone()[0]:
                        found[(alias, cursor_table)] = 1
    return found


def test_erasure_through_the_api_on_a_real_worker(celery_worker_factory, receiver):
    url, received = receiver
    subject = person("tess@example.fr", device_id="tess-phone")
    client, http = api_client()
    _, officer = officer_client()
    celery_worker_factory(queues=["compliance.eu"])
    created = post_open(http, open_body("tess@example.fr", callback_url=url)).json()
    assert created["status"] == "awaiting_approval"
    assert officer.post(f"/api/v1/requests/{created['id']}/approve/").status_code == 200
    wait_for(
        lambda: http.get(f"/api/v1/requests/{created['id']}/").json()["status"] == "completed",
        timeout=60,
        what="the eu worker to finish the erasure",
    )
    assert _rows_of([subject.pk]) == {}
    tokens = set(AuditEvent.objects.using("eu").values_list("subject_token", flat=True))
    assert subject.audit_token in tokens  # the audit log keeps only the token
    answer = http.get(f"/api/v1/requests/{created['id']}/receipt/").json()
    assert receipt_verify(
        receipt=answer["receipt"],
        signature=answer["signature"],
        public_key_pem=answer["public_key_pem"].encode(),
    )
    assert answer["receipt"]["tables"]["compliance.Identity"] == 2
    for alias in settings.DATABASES:
        verify_chain(alias)
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="email", value="tess@example.fr", jurisdiction="FR", actor=ACTOR
        )
    wait_for(
        lambda: "completed" in [json.loads(body)["status"] for _, body in received],
        timeout=30,
        what="the completed status callback",
    )
    for headers, body in received:
        expected = hmac.new(
            client.callback_secret.encode(),
            headers["X-Compliance-Timestamp"].encode() + b"." + body,
            hashlib.sha256,
        ).hexdigest()
        assert headers["X-Compliance-Signature"] == f"sha256={expected}"
    assert "completed" in [json.loads(body)["status"] for _, body in received]


def test_portability_package_through_the_api(celery_worker_factory):
    subject = person("uma@example.fr", crm_id="crm-77")
    _, http = api_client()
    celery_worker_factory(queues=["compliance.eu"])
    created = post_open(http, open_body("uma@example.fr", type="portability")).json()
    wait_for(
        lambda: http.get(f"/api/v1/requests/{created['id']}/").json()["status"] == "completed",
        timeout=60,
        what="the package job",
    )
    response = http.get(f"/api/v1/requests/{created['id']}/package/")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    data = json.loads(archive.read("data.json"))
    values = sorted(row["value"] for row in data["tables"]["compliance.Identity"])
    assert values == ["crm-77", "uma@example.fr"]
    assert data["tables"]["compliance.Subject"][0]["id"] == str(subject.pk)
    assert "tables/compliance.Identity.csv" in archive.namelist()
    assert "uma@example.fr" in archive.read("tables/compliance.Identity.csv").decode()
    assert "Your personal data" in archive.read("summary.txt").decode()
    stored = PrivacyRequest.objects.using("eu").get(pk=created["id"])
    from compliance.dsar.models import Package

    package = Package.objects.using("eu").get(request_id=stored.pk)
    assert b"uma@example.fr" not in bytes(package.ciphertext)  # encrypted at rest
    downloads = AuditEvent.objects.using("eu").filter(
        object_id=created["id"], code=C.PACKAGE_DOWNLOADED
    )
    assert downloads.count() == 1


def test_worker_killed_mid_erasure_the_next_worker_finishes(celery_worker_factory, monkeypatch):
    ids = {"device_id": "k-dev", "user_id": "k-user", "crm_id": "k-crm", "phone": "+3312345678"}
    subject = person("vic@example.fr", **ids)
    _, http = api_client()
    _, officer = officer_client()
    monkeypatch.setenv("COMPLIANCE_ERASURE_STEP_DELAY", "0.4")
    worker = celery_worker_factory(queues=["compliance.eu"])
    created = post_open(http, open_body("vic@example.fr")).json()
    officer.post(f"/api/v1/requests/{created['id']}/approve/")
    wait_for(
        lambda: (
            ErasureStep.objects.using("eu").filter(request_id=created["id"], status="done").count()
            >= 4
        ),
        timeout=60,
        what="the erasure to get under way",
    )
    worker.kill()
    request = PrivacyRequest.objects.using("eu").get(pk=created["id"])
    assert request.status == "processing"
    monkeypatch.delenv("COMPLIANCE_ERASURE_STEP_DELAY")
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if visibility is not None:
        # Redis: a new worker restores unacked messages older than the visibility timeout when
        # it starts (later sweeps are ~100 s apart); wait so that the first sweep finds it
        time.sleep(visibility + 1)
    celery_worker_factory(queues=["compliance.eu"])
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # the filesystem transport drops a message once read: the beat safety net re-enqueues
        assert requests_resume_stuck(region="eu", stale_after=0) == 1
    wait_for(
        lambda: PrivacyRequest.objects.using("eu").get(pk=created["id"]).status == "completed",
        timeout=90,
        what="the next worker to finish the erasure",
    )
    assert _rows_of([subject.pk]) == {}
    events = AuditEvent.objects.using("eu").filter(object_id=created["id"])
    steps = [e.payload["step"] for e in events.filter(code=C.ERASURE_STEP_COMPLETED)]
    assert len(steps) == len(set(steps))
    assert events.filter(code=C.SUPPRESSION_ADDED).count() == 5
    assert events.filter(code=C.ERASURE_RECEIPT_ISSUED).count() == 1
    assert events.filter(code=C.SUBJECT_KEY_DESTROYED).count() == 1
    done = PrivacyRequest.objects.using("eu").get(pk=created["id"])
    assert done.receipt["tables"]["compliance.Identity"] == 5
    assert receipt_verify(receipt=done.receipt, signature=done.receipt_signature)
    verify_chain("eu")
