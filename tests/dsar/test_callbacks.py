"""Status callbacks: event id and attempt in headers and body, every try recorded and listed
(API and request page); outbound URLs checked at creation and again at delivery."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client, override_settings

from compliance import outbound
from compliance.dsar.models import CallbackAttempt, PrivacyRequest
from compliance.dsar.services.callbacks import CallbackError, callback_deliver
from compliance.feed.services.subscriptions import SubscriptionInputError, subscription_create
from tests.admin.helpers import PASSWORD
from tests.dsar.helpers import api_client, open_body, post_open
from tests.factories import StaffFactory, SubjectFactory
from tests.feed.conftest import receiver  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(databases="__all__")

PRODUCTION = override_settings(COMPLIANCE_OUTBOUND_ALLOW_LOCAL=False)


def _open(http, url: str) -> PrivacyRequest:
    SubjectFactory(email="cb@example.fr")
    response = post_open(http, open_body("cb@example.fr", type="access", callback_url=url))
    assert response.status_code == 201, response.json()
    return PrivacyRequest.objects.using("eu").get(pk=response.json()["id"])


def test_callback_carries_event_id_and_attempt_and_every_try_is_listed(receiver):  # noqa: F811
    client, http = api_client()
    request = _open(http, receiver.url)
    receiver.respond = lambda index: 503 if index == 0 else 200
    with pytest.raises(CallbackError):
        callback_deliver(region="eu", request_id=str(request.pk), status="processing")
    assert callback_deliver(region="eu", request_id=str(request.pk), status="processing") == 200
    first, second = receiver.requests
    bodies = [json.loads(d.body) for d in (first, second)]
    assert bodies[0]["event_id"] == bodies[1]["event_id"] == first.headers["X-Compliance-Event-Id"]
    assert [b["attempt"] for b in bodies] == [1, 2]
    assert second.headers["X-Compliance-Attempt"] == "2"
    expected = hmac.new(
        client.callback_secret.encode(),
        second.headers["X-Compliance-Timestamp"].encode() + b"." + second.body,
        hashlib.sha256,
    ).hexdigest()
    assert second.headers["X-Compliance-Signature"] == f"sha256={expected}"

    listed = http.get(f"/api/v1/requests/{request.pk}/callbacks/").json()
    assert listed["count"] == 2
    assert [(a["attempt"], a["status_code"]) for a in listed["results"]] == [(1, 503), (2, 200)]
    assert {a["event_id"] for a in listed["results"]} == {bodies[0]["event_id"]}

    officer = StaffFactory(username="cb-officer", group="Privacy officer", password=PASSWORD)
    page = Client()
    page.force_login(officer)
    html = page.get(f"/admin/officer/requests/{request.pk}/").content.decode()
    assert 'id="callbacks"' in html and bodies[0]["event_id"] in html and "503" in html
    admin_page = page.get(f"/admin/dsar/privacyrequest/{request.pk}/change/?region=eu")
    assert admin_page.status_code == 200
    assert bodies[0]["event_id"] in admin_page.content.decode()


def test_callbacks_list_is_the_clients_own():
    _, http = api_client()
    _, other = api_client()
    request = _open(http, "http://127.0.0.1:9/cb")
    assert other.get(f"/api/v1/requests/{request.pk}/callbacks/").status_code == 404


@pytest.mark.parametrize(
    ("url", "resolves_to"),
    [
        ("http://hooks.example.com/cb", ["93.184.216.34"]),  # not https
        ("https://127.0.0.1/cb", ["127.0.0.1"]),
        ("https://localhost/cb", ["::1"]),
        ("https://intranet.example.com/cb", ["10.1.2.3"]),
        ("https://metadata.example.com/cb", ["169.254.169.254"]),
        ("https://mixed.example.com/cb", ["93.184.216.34", "192.168.0.7"]),
        ("https://mapped.example.com/cb", ["::ffff:127.0.0.1"]),
        ("https://unknown.invalid/cb", None),
    ],
)
def test_production_refuses_local_or_plain_callback_urls_at_creation(monkeypatch, url, resolves_to):
    def resolve(host, port):
        if resolves_to is None:
            raise OSError("no such host")
        return resolves_to

    monkeypatch.setattr(outbound, "_resolve", resolve)
    _, http = api_client()
    SubjectFactory(email="cb@example.fr")
    with PRODUCTION:
        response = post_open(http, open_body("cb@example.fr", callback_url=url))
        assert response.status_code == 400
        assert "callback_url" in response.json()["error"]["fields"]
        with pytest.raises(SubscriptionInputError) as refused:
            subscription_create(name="h", url=url, event_types=["enter"], actor=None)
        assert refused.value.field == "url"
    assert not PrivacyRequest.objects.using("eu").exists()


def test_production_checks_again_at_delivery(monkeypatch):
    _, http = api_client()
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["93.184.216.34"])
    with PRODUCTION:
        request = _open(http, "https://hooks.example.com/cb")
        # the name now points inside the network: recorded, not sent, not retried
        monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["10.0.0.5"])
        assert (
            callback_deliver(region="eu", request_id=str(request.pk), status="processing") is None
        )
    (attempt,) = CallbackAttempt.objects.using("eu").filter(request_id=request.pk)
    assert attempt.status_code is None and attempt.error.startswith("refused:")


def test_redirects_are_not_followed(receiver):  # noqa: F811
    _, http = api_client()
    request = _open(http, receiver.url)
    receiver.respond = lambda index: 302
    with pytest.raises(CallbackError):
        callback_deliver(region="eu", request_id=str(request.pk), status="processing")
    assert len(receiver.requests) == 1
    assert CallbackAttempt.objects.using("eu").get(request_id=request.pk).status_code == 302
