"""Quiet start: the governance finding ``segments.W001`` is a banner where an officer works and a
deploy check, not a warning repeated by every management command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.factories import SegmentFactory
from tests.segments.test_admin import login

pytestmark = pytest.mark.django_db(databases="__all__")


def test_banner_on_the_officer_pages_not_on_every_changelist(officer):
    SegmentFactory(user=officer, key="lonely", motion="campaign")
    client = login(officer)
    queue = client.get("/admin/officer/queue/").content.decode()
    assert 'class="governance-banner"' in queue and "segments.W001" in queue
    assert "lonely" in queue
    changelist = client.get("/admin/segments/segment/").content.decode()
    assert 'class="governance-banner"' not in changelist


def test_no_banner_when_governance_holds(officer):
    for n in range(3):
        SegmentFactory(user=officer, key=f"fine-{n}", motion="campaign")
    assert (
        'class="governance-banner"'
        not in login(officer).get("/admin/officer/queue/").content.decode()
    )


def test_check_is_a_deploy_check_not_printed_by_every_command(officer):
    SegmentFactory(user=officer, key="lonely", motion="campaign")
    out, err = io.StringIO(), io.StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "segments.W001" not in out.getvalue() + err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    call_command("check", "--deploy", "--tag", "governance", stdout=out, stderr=err)
    assert "segments.W001" in out.getvalue() + err.getvalue()
