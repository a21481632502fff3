"""Consent API: recording, lookups, history, Consent Mode, TCF decode, GPC; bad input."""

from __future__ import annotations

import pytest

from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent
from compliance.models import Subject, SubjectDirectory
from tests.consent.conftest import api_client
from tests.consent.test_tcf import VALID, core, disclosed
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def consent_body(**overrides):
    body = {
        "identifier": {"type": "email", "value": "Claire@Example.fr"},
        "jurisdiction": "FR",
        "source": "web",
        "decisions": [{"purpose": "measurement", "decision": "granted"}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def nothing_written():
    return (
        not SubjectDirectory.objects.exists()
        and not ConsentEvent.objects.using("eu").exists()
        and not ConsentEvent.objects.using("us").exists()
        and not Subject.objects.using("eu").exists()
    )


def test_post_consent_creates_subject_in_region_and_records():
    client = api_client("consent:write", "consent:read")
    response = client.post("/api/v1/consents/", consent_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["region"] == "eu"
    assert [(e["purpose"], e["decision"]) for e in body["events"]] == [("measurement", "granted")]
    event = ConsentEvent.objects.using("eu").get()
    assert event.actor_type == "client"
    lookup = client.get("/api/v1/subjects/lookup", {"type": "email", "value": "claire@example.fr"})
    assert lookup.status_code == 200
    data = lookup.json()
    assert data["id"] == body["subject_id"] and data["region"] == "eu"
    assert data["evaluation"]["measurement"]["allowed"] is True
    assert data["state"][0]["purpose"] == "measurement"
    history = client.get(f"/api/v1/subjects/{body['subject_id']}/consents/").json()
    assert [e["id"] for e in history["history"]] == [event.pk]


def test_tcf_signal_via_api():
    client = api_client("consent:write")
    response = client.post(
        "/api/v1/consents/",
        consent_body(decisions=None, signal={"type": "tcf", "value": VALID}, jurisdiction="DE"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["signal"] == {"type": "tcf", "valid": True, "errors": []}
    assert {e["method"] for e in response.json()["events"]} == {"tcf_string"}


def test_gpc_header_exactly_one_records_opt_out_in_binding_state():
    client = api_client("consent:write")
    body = consent_body(jurisdiction="US-CA", decisions=None)
    response = client.post("/api/v1/consents/", body, format="json", HTTP_SEC_GPC="1")
    assert response.status_code == 201, response.json()
    assert response.json()["gpc"] == {"received": True, "binding": True, "recorded": 2}
    assert ConsentEvent.objects.using("us").filter(decision="opted_out").count() == 2
    # "true" is not the spec's value: ignored, and with nothing else to do it's a 400
    other = consent_body(identifier={"type": "email", "value": "x@example.com"}, decisions=None)
    response = client.post("/api/v1/consents/", other, format="json", HTTP_SEC_GPC="true")
    assert response.status_code == 400


def test_gpc_where_not_binding_writes_nothing():
    client = api_client("consent:write")
    body = consent_body(jurisdiction="US-NY", decisions=None)
    response = client.post("/api/v1/consents/", body, format="json", HTTP_SEC_GPC="1")
    assert response.status_code == 200
    assert response.json()["gpc"]["binding"] is False
    assert nothing_written() and not Subject.objects.using("us").exists()


def test_identifiers_list_stitches():
    client = api_client("consent:write")
    body = consent_body(
        identifier=None,
        identifiers=[
            {"type": "anonymous_id", "value": "a-1"},
            {"type": "email", "value": "dora@example.fr"},
        ],
    )
    assert client.post("/api/v1/consents/", body, format="json").status_code == 201
    assert SubjectDirectory.objects.values("subject_id").distinct().count() == 1
    assert SubjectDirectory.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"decisions": [{"purpose": "nope", "decision": "granted"}]}, "decisions.0.purpose"),
        ({"decisions": [{"purpose": "storage", "decision": "yes"}]}, "decisions.0.decision"),
        ({"source": "carrier_pigeon"}, "source"),
        ({"identifier": {"type": "email", "value": "not-an-email"}}, "identifier.value"),
        ({"identifier": {"type": "passport", "value": "x"}}, "identifier.type"),
        ({"identifier": None}, "identifier"),
        ({"jurisdiction": "Frankreich"}, "jurisdiction"),
        ({"signal": {"type": "tcf", "value": "!!!"}, "decisions": None}, "signal.value"),
        ({"decisions": None}, "decisions"),
    ],
)
def test_bad_input_is_400_naming_field_and_writes_nothing(overrides, field):
    client = api_client("consent:write")
    response = client.post("/api/v1/consents/", consent_body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()
    assert nothing_written()
    assert not AuditEvent.objects.using("eu").exists()


def test_no_token_401_wrong_scope_403():
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/consents/", consent_body(), format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    response = api_client("consent:read").post("/api/v1/consents/", consent_body(), format="json")
    assert response.status_code == 403
    assert "consent:write" in response.json()["error"]["message"]
    response = api_client("consent:write").get("/api/v1/subjects/lookup?type=email&value=a@b.co")
    assert response.status_code == 403
    assert nothing_written()


def test_lookup_errors():
    client = api_client("consent:read")
    assert client.get("/api/v1/subjects/lookup", {"type": "email"}).status_code == 400
    missing = client.get("/api/v1/subjects/lookup", {"type": "email", "value": "zz@example.org"})
    assert missing.status_code == 404
    assert nothing_written()


def test_consent_mode_endpoint():
    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    ConsentFactory(subject=subject, purpose="storage", decision="granted")
    client = api_client("consent:read")
    response = client.get(f"/api/v1/subjects/{subject.pk}/consent-mode/", {"jurisdiction": "FR"})
    assert response.status_code == 200
    assert response.json()["consent_mode"]["analytics_storage"] == "granted"
    assert response.json()["consent_mode"]["ad_personalization"] == "denied"
    assert len(response.json()["consent_mode"]) == 7


def test_tcf_decode_endpoint():
    client = api_client("signals:decode")
    response = client.post("/api/v1/signals/tcf/decode", {"tc_string": VALID}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["errors"] == []
    assert body["purposes_consent"] == [1, 2, 3, 4, 7]
    assert body["created"].endswith("Z")
    expected = {
        "version", "created", "last_updated", "cmp_id", "cmp_version", "consent_screen",
        "consent_language", "vendor_list_version", "tcf_policy_version", "is_service_specific",
        "use_non_standard_texts", "special_feature_opt_ins", "purposes_consent",
        "purposes_li_transparency", "purpose_one_treatment", "publisher_cc", "vendor_consents",
        "vendor_legitimate_interests", "publisher_restrictions", "disclosed_vendors",
        "allowed_vendors", "valid", "errors",
    }  # fmt: skip
    assert set(body) == expected
    invalid = f"{core(policy=2).encode()}.{disclosed([2], 2)}"
    body = client.post("/api/v1/signals/tcf/decode", {"tc_string": invalid}, format="json").json()
    assert body["valid"] is False
    assert [e["rule"] for e in body["errors"]] == ["policy_version_below_4"]
    bad = client.post("/api/v1/signals/tcf/decode", {"tc_string": "@@"}, format="json")
    assert bad.status_code == 400
    assert "tc_string" in bad.json()["error"]["fields"]
    assert (
        api_client("consent:read")
        .post("/api/v1/signals/tcf/decode", {"tc_string": VALID}, format="json")
        .status_code
        == 403
    )


def test_gpc_json_is_served(client):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.json()["gpc"] is True and "lastUpdate" in response.json()


def test_lookup_by_post_keeps_identifier_out_of_the_url():
    SubjectFactory(jurisdiction="FR", email="lookup.post@example.fr")
    client = api_client("consent:read")
    response = client.post(
        "/api/v1/subjects/lookup",
        {"type": "email", "value": "Lookup.Post@example.fr"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["region"] == "eu"
    bad = client.post("/api/v1/subjects/lookup", {"type": "email"}, format="json")
    assert bad.status_code == 400 and "value" in bad.json()["error"]["fields"]
