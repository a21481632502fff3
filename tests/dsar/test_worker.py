"""End to end with a real Celery worker: erasure and portability through the API, a worker
killed mid-erasure, signed status callbacks to a local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.conf import settings
from django.core.management import call_command

from compliance.audit.codes import AuditCode as C
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent, ConsentState
from compliance.dsar.models import ErasureStep, Package, PrivacyRequest
from compliance.dsar.services.maintenance import requests_resume_stuck
from compliance.dsar.services.receipts import receipt_verify
from compliance.events.models import Event
from compliance.feed.models import Change
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from tests.conftest import wait_for
from tests.dsar.helpers import (
    ACTOR,
    api_client,
    event_body,
    occurrences,
    officer_client,
    open_body,
    post_open,
    rich_person,
    verify_chain,
)
from tests.factories import SegmentFactory, SubjectFactory

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


def _completed(http, request_id: str, *, timeout: float = 60, what: str = "the job") -> dict:
    return wait_for(
        lambda: (
            (body := http.get(f"/api/v1/requests/{request_id}/").json())["status"] == "completed"
            and body
        ),
        timeout=timeout,
        what=what,
    )


def test_portability_then_erasure_of_a_person_with_all_kinds_of_data(
    celery_worker_factory, receiver
):
    """One EU person with stitched identities, consent, events and a segment membership:
    their portability package holds every row; then their erasure (API open, officer approval,
    real EU worker) leaves nothing of them in any database but audit tokens."""
    url, received = receiver
    email, anonymous_id = "tess@example.fr", "anon-tess-1"
    seg = SegmentFactory()
    survivor, merged = rich_person(email, anonymous_id, segments=[seg], events=2)
    ids = [survivor.pk, merged.pk]
    client, http = api_client()
    _, officer = officer_client()
    celery_worker_factory(queues=["compliance.eu"])

    # --- portability: every row, decrypted, JSON that parses ---------------------------------
    opened = post_open(http, open_body(email, type="portability")).json()
    _completed(http, opened["id"], what="the package job")
    response = http.get(f"/api/v1/requests/{opened['id']}/package/")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    data = json.loads(archive.read("data.json"))
    tables = data["tables"]
    assert sorted(row["value"] for row in tables["compliance.Identity"]) == [
        anonymous_id,
        email,
    ]
    assert {row["id"] for row in tables["compliance.Subject"]} == {str(i) for i in ids}
    consent = tables["consent.ConsentEvent"]
    held = ConsentEvent.objects.using("eu").filter(subject_id__in=ids)
    consent_rows = held.count()
    assert len(consent) == consent_rows >= 3
    assert {row["purpose"] for row in consent} >= {"storage", "audience_segmentation"}
    assert (
        len(tables["consent.ConsentState"])
        == ConsentState.objects.using("eu").filter(subject_id__in=ids).count()
    )
    (membership,) = tables["segments.SegmentMembership"]
    assert membership["segment_key"] == seg.key and membership["exited_at"] is None
    events = sorted(tables["events.Event"], key=lambda row: row["name"])
    assert [e["properties"] for e in events] == [
        {"path": "/p/0", "plan": "pro"},
        {"path": "/p/1", "plan": "pro"},
    ]
    assert email in archive.read("tables/compliance.Identity.csv").decode()
    assert "Your personal data" in archive.read("summary.txt").decode()
    package = Package.objects.using("eu").get(request_id=opened["id"])
    assert email.encode() not in bytes(package.ciphertext)  # encrypted at rest
    downloads = AuditEvent.objects.using("eu").filter(
        object_id=opened["id"], code=C.PACKAGE_DOWNLOADED
    )
    assert downloads.count() == 1

    # --- erasure --------------------------------------------------------------------------
    created = post_open(http, open_body(email, callback_url=url)).json()
    assert created["status"] == "awaiting_approval"
    assert officer.post(f"/api/v1/requests/{created['id']}/approve/").status_code == 200
    _completed(http, created["id"], what="the eu worker to finish the erasure")

    left = occurrences([*ids, email, anonymous_id])
    # what stays by design: the destroyed-keys ledger (random ids, replayed after a restore),
    # the finished request's list of the subjects it erased (random ids, no identifier) and
    # the change feed's erasure notice for the one segment the person left (random subject id
    # and segment key: recipients must learn of the erasure, GDPR Art. 17(2)/19; the feed's
    # sweep removes it once delivered and past COMPLIANCE_FEED_ERASURE_NOTICE_TTL_DAYS)
    assert left == {
        ("eu", "dsar_destroyedkey", "subject_id"): 2,
        ("eu", "dsar_privacyrequest", "erasure_subjects"): 2,
        ("eu", "feed_change", "subject_id"): 1,
    }, left
    (notice,) = Change.objects.using("eu").filter(subject_id__in=ids)
    assert (notice.kind, notice.reason, notice.segment_key) == ("retract", "erasure", seg.key)
    assert not (notice.purpose or notice.source or notice.decision)
    tokens = set(AuditEvent.objects.using("eu").values_list("subject_token", flat=True))
    assert survivor.audit_token in tokens and merged.audit_token in tokens  # only tokens
    exits = AuditEvent.objects.using("eu").filter(
        code=C.MEMBERSHIP_EXITED, subject_token=survivor.audit_token
    )
    assert [(e.object_id, e.payload) for e in exits] == [
        (seg.key, {"reason": "erasure", "membership_id": membership["id"], "arm": "treatment"})
    ]
    answer = http.get(f"/api/v1/requests/{created['id']}/receipt/").json()
    assert receipt_verify(
        receipt=answer["receipt"],
        signature=answer["signature"],
        public_key_pem=answer["public_key_pem"].encode(),
    )
    receipt = answer["receipt"]
    assert receipt["subjects"] == 2
    assert receipt["tables"]["compliance.Identity"] == 2
    assert receipt["tables"]["events.Event"] == 2
    assert receipt["tables"]["consent.ConsentEvent"] == consent_rows
    assert receipt["tables"]["segments.SegmentMembership"] == 1
    assert receipt["tables"]["dsar.Package"] == 1
    assert receipt["memberships_exited"] == 1
    out = io.StringIO()
    call_command("audit_verify", stdout=out)  # raises CommandError (exit 1) when broken
    assert out.getvalue().count(": OK") == len(settings.DATABASES)
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(identifier_type="email", value=email, jurisdiction="FR", actor=ACTOR)
    _, events_http = api_client(scopes=["events:write"])
    refused = events_http.post("/api/v1/events/", {"events": [event_body(email)]}, format="json")
    assert [r["reason"] for r in refused.json()["results"]] == ["subject_suppressed"]
    assert not Event.objects.using("eu").exists()
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


def test_worker_killed_mid_erasure_the_next_worker_finishes(
    celery_worker_factory, monkeypatch, tmp_path
):
    """A one-request erasure takes the engine's one path: its plan and steps (fewer rows than a
    commit's worth) share one region transaction, so a worker killed -9 after some steps
    leaves nothing committed, and the next worker does them all, once."""
    ids = {"device_id": "k-dev", "user_id": "k-user", "crm_id": "k-crm", "phone": "+3312345678"}
    subject = SubjectFactory(email="vic@example.fr", identifiers=ids)
    _, http = api_client()
    _, officer = officer_client()
    progress = tmp_path / "steps.log"
    progress.touch()
    monkeypatch.setenv("SLOW_STEPS_LOG", str(progress))
    worker = celery_worker_factory(queues=["compliance.eu"], app="tests.dsar.slow_worker")
    created = post_open(http, open_body("vic@example.fr")).json()
    officer.post(f"/api/v1/requests/{created['id']}/approve/")
    wait_for(
        lambda: len(progress.read_text().split()) >= 4,
        timeout=60,
        what="the erasure to get under way",
    )
    worker.kill()
    request = PrivacyRequest.objects.using("eu").get(pk=created["id"])
    assert request.status == "processing"
    assert request.erasure_subjects == [], "a killed run left its plan committed"
    steps = ErasureStep.objects.using("eu").filter(request_id=created["id"])
    assert not steps.exists(), "a killed run left steps half committed"
    completed = AuditEvent.objects.using("eu").filter(code=C.ERASURE_STEP_COMPLETED)
    assert not completed.filter(object_id=created["id"]).exists()
    # Redis: the new worker restores the killed worker's unacknowledged message once it is
    # older than CELERY_VISIBILITY_TIMEOUT (5 s in the test run; scanned every ~second);
    # embedded broker: the new worker puts the dead worker's claimed message back at once
    celery_worker_factory(queues=["compliance.eu"])
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # the filesystem transport drops a message once read: the beat safety net re-enqueues
        assert requests_resume_stuck(region="eu", stale_after=0) == 1
    wait_for(
        lambda: PrivacyRequest.objects.using("eu").get(pk=created["id"]).status == "completed",
        timeout=45,
        what="the next worker to finish the erasure",
    )
    assert occurrences([subject.pk, "vic@example.fr"]) == {
        ("eu", "dsar_destroyedkey", "subject_id"): 1,
        ("eu", "dsar_privacyrequest", "erasure_subjects"): 1,
    }
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
