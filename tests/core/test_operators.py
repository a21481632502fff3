"""Operator commands, roles, API plumbing (auth, scopes, error body), settings hardening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from compliance.api.auth import token_generate, token_hash
from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.models import ApiClient, Subject
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT, role_allows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(databases="__all__")


def perms(group: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=group).permissions.select_related("content_type")
    }


def test_groups_exist_with_only_their_permissions():
    auditor, support, officer = perms(AUDITOR), perms(SUPPORT_AGENT), perms(PRIVACY_OFFICER)
    assert auditor and support and officer
    assert all(
        p.split(".")[1].startswith("view_") or p == "audit.export_auditevent" for p in auditor
    )
    assert "audit.export_auditevent" in auditor
    assert not any(p.split(".")[1].startswith(("approve_", "delete_")) for p in support)
    assert not any(
        p.startswith("audit.") and not p.split(".")[1].startswith("view_") for p in support
    )
    assert "compliance.change_apiclient" in officer
    assert not any(p.startswith(("audit.add_", "audit.change_", "audit.delete_")) for p in officer)


@pytest.mark.parametrize(
    ("role", "app", "codename", "allowed"),
    [
        (SUPPORT_AGENT, "dsar", "add_privacyrequest", True),
        (SUPPORT_AGENT, "dsar", "approve_privacyrequest", False),
        (SUPPORT_AGENT, "segments", "approve_segment", False),
        (SUPPORT_AGENT, "segments", "change_segment", False),
        (AUDITOR, "dsar", "view_privacyrequest", True),
        (AUDITOR, "compliance", "view_identity", False),
        (AUDITOR, "events", "view_event", False),
        (SUPPORT_AGENT, "compliance", "view_identity", True),
        (AUDITOR, "dsar", "change_privacyrequest", False),
        (AUDITOR, "audit", "export_auditevent", True),
        (PRIVACY_OFFICER, "dsar", "approve_privacyrequest", True),
        (PRIVACY_OFFICER, "audit", "delete_auditevent", False),
        (PRIVACY_OFFICER, "auth", "change_user", False),
    ],
)
def test_role_rules(role, app, codename, allowed):
    assert role_allows(role=role, app_label=app, codename=codename) is allowed


def test_create_staff_with_password_env(monkeypatch):
    monkeypatch.setenv("ALICE_PW", "a-long-Unusual-passphrase-42")
    call_command("create_staff", "alice", "--group", PRIVACY_OFFICER, "--password-env", "ALICE_PW")
    user = User.objects.get(username="alice")
    assert user.is_staff and user.check_password("a-long-Unusual-passphrase-42")
    assert list(user.groups.values_list("name", flat=True)) == [PRIVACY_OFFICER]


def test_create_staff_refuses_missing_env_and_weak_password(monkeypatch):
    with pytest.raises(CommandError, match="NOPE is empty or not set"):
        call_command("create_staff", "bob", "--group", AUDITOR, "--password-env", "NOPE")
    monkeypatch.setenv("WEAK", "123")
    with pytest.raises(CommandError, match="password rejected"):
        call_command("create_staff", "bob", "--group", AUDITOR, "--password-env", "WEAK")
    assert not User.objects.filter(username="bob").exists()


def test_create_api_client_prints_token_once_and_stores_hash(capsys):
    call_command("create_api_client", "helpdesk", "--scopes", "dsar:write,dsar:read")
    out = capsys.readouterr().out.strip().splitlines()
    token = out[-1]
    client = ApiClient.objects.get(name="helpdesk")
    assert f"shown once): {client.callback_secret}" in "\n".join(out)
    assert client.token_hash == token_hash(token) and token not in client.token_hash
    assert client.scopes == ["dsar:write", "dsar:read"]
    with pytest.raises(CommandError, match="unknown scopes dsar:everything"):
        call_command("create_api_client", "x", "--scopes", "dsar:everything")


def test_create_api_client_refuses_approval_scopes_outside_the_officer_group(capsys):
    support = User.objects.create_user("support", is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT_AGENT))
    officer = User.objects.create_user("officer1", is_staff=True)
    officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    for scopes, user in [
        ("dsar:approve", "support"),
        ("dsar:read,segments:review", "support"),
        ("dsar:approve", None),
    ]:
        args = ["--user", user] if user else []
        with pytest.raises(CommandError, match="Privacy officer") as refused:
            call_command("create_api_client", "x", "--scopes", scopes, *args)
        assert "approve on a person's behalf" in str(refused.value)
    assert not ApiClient.objects.filter(name="x").exists()
    call_command("create_api_client", "ok", "--scopes", "dsar:approve", "--user", "officer1")
    assert ApiClient.objects.get(name="ok").user == officer
    # the admin form says the same
    from compliance.admin import ApiClientForm

    form = ApiClientForm(data={"name": "y", "scopes": '["dsar:approve"]', "user": support.pk})
    assert not form.is_valid() and "Privacy officer" in str(form.errors["scopes"])
    form = ApiClientForm(data={"name": "y", "scopes": '["dsar:approve"]', "user": officer.pk})
    assert form.is_valid(), form.errors


def test_migrate_all_and_load_demo_are_idempotent(capsys):
    call_command("migrate_all")
    call_command("load_demo")
    call_command("load_demo")
    assert Subject.objects.using("eu").count() == 3
    assert Subject.objects.using("us").count() == 2
    assert User.objects.get(username="officer").groups.filter(name=PRIVACY_OFFICER).exists()
    # subject creation is audited in the subject's region, with the token only
    created = AuditEvent.objects.using("eu").filter(code=AuditCode.SUBJECT_KEY_CREATED)
    assert created.count() == 3
    assert all(e.subject_token for e in created)


class ScopedView(APIView):
    required_scopes = {"GET": "dsar:read"}

    def get(self, request):
        return Response({"client": request.auth.name})


class UnscopedView(APIView):
    def get(self, request):
        return Response({})


def make_client(*, scopes) -> str:
    token = token_generate()
    ApiClient.objects.create(
        name=f"c-{token[-6:]}", token_prefix=token[:12], token_hash=token_hash(token), scopes=scopes
    )
    return token


@pytest.mark.parametrize(
    ("header", "scopes", "status", "code"),
    [
        (None, None, 401, "not_authenticated"),
        ("Bearer ctk_unknown", None, 401, "authentication_failed"),
        ("valid", ["dsar:write"], 403, "permission_denied"),
        ("valid", ["dsar:read"], 200, None),
    ],
)
def test_api_auth_and_scopes_with_one_error_shape(header, scopes, status, code):
    factory = APIRequestFactory()
    if header == "valid":
        header = f"Bearer {make_client(scopes=scopes)}"
    request = factory.get("/x", HTTP_AUTHORIZATION=header) if header else factory.get("/x")
    response = ScopedView.as_view()(request)
    assert response.status_code == status
    if code:
        assert set(response.data) == {"error"}
        assert response.data["error"]["code"] == code
        assert response.data["error"]["message"]


def test_view_without_scope_is_refused_even_with_token():
    token = make_client(scopes=["dsar:read"])
    request = APIRequestFactory().get("/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    response = UnscopedView.as_view()(request)
    assert response.status_code == 403
    assert "declares no scope" in response.data["error"]["message"]


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings_production",
            "DJANGO_SECRET_KEY": "x" * 30 + "Y7#kq!" + "z" * 30,
            "COMPLIANCE_ROOT_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "COMPLIANCE_SIGNING_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "COMPLIANCE_VAR_DIR": str(tmp_path),
            "COMPLIANCE_AUDIT_WITNESS_DIR": str(tmp_path.parent / "audit-witness"),
            "DJANGO_ALLOWED_HOSTS": "compliance.example.org",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert not (tmp_path / "secrets.json").exists()  # production never generates secrets


def test_production_settings_refuse_missing_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COMPLIANCE_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings_production",
            "COMPLIANCE_VAR_DIR": str(tmp_path),
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_policy_settings_come_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update(
        {
            "COMPLIANCE_VAR_DIR": str(tmp_path),
            "COMPLIANCE_COUNTRY_REGIONS": "GB=eu, CH=eu",
            "COMPLIANCE_DSAR_AUTO_APPROVE_METHODS": "bank_id,eid",
            "COMPLIANCE_SEGMENTS_PAUSE_OVERDUE": "true",
        }
    )
    code = (
        "import django; django.setup();"
        "from compliance.regions import region_for_country as r;"
        "from compliance.conf import compliance_settings as c;"
        "print(r(country='GB'), r(country='CH'), r(country='DE'), r(country='JP'),"
        " c.DSAR_AUTO_APPROVE_METHODS, c.SEGMENTS_PAUSE_OVERDUE)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "eu eu eu us ['bank_id', 'eid'] True"


def test_throttling_is_per_client_with_the_error_body(monkeypatch):
    from django.core.cache import cache

    from compliance.api.throttling import ClientRateThrottle

    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/min"})
    cache.clear()
    factory = APIRequestFactory()
    busy, calm = make_client(scopes=["dsar:read"]), make_client(scopes=["dsar:read"])

    def call(token):
        return ScopedView.as_view()(factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {token}"))

    assert [call(busy).status_code for _ in range(3)] == [200, 200, 429]
    limited = call(busy)
    assert limited.data["error"]["code"] == "throttled"
    assert call(calm).status_code == 200  # another client has its own budget
    cache.clear()


def test_last_used_is_recorded_without_a_write_on_every_request(django_assert_num_queries):
    token = make_client(scopes=["dsar:read"])
    factory = APIRequestFactory()

    def call():
        return ScopedView.as_view()(factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {token}"))

    assert call().status_code == 200
    first = ApiClient.objects.get(token_hash=token_hash(token)).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the token lookup only
        assert call().status_code == 200
    assert ApiClient.objects.get(token_hash=token_hash(token)).last_used_at == first
