"""Lift where decisions are made: the dashboard, the quarterly review (decision stored with the
figures and audited), the evidence report and its bundle (aggregates, never a subject), and the
control group share fixed once a segment has been activated (service, API, admin)."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor
from compliance.audit.services.export import audit_export
from segments.models import Segment, SegmentReview
from segments.selectors.lift import lift_report
from segments.services.definitions import SegmentGovernanceError, segment_update
from segments.services.lift import lift_compute
from segments.services.reviews import segment_review
from tests.factories import SegmentFactory, StaffFactory
from tests.segments import lift_data
from tests.segments.helpers import events
from tests.segments.test_api import client_for

pytestmark = pytest.mark.django_db(databases="__all__")


def _computed(officer, *, key="deal-makers", n=600, name="Deal makers", seed=1):
    return lift_data.computed_segment(user=officer, key=key, n=n, name=name, seed=seed)


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_shows_lift_per_active_segment_with_ci_srm_and_not_enough_data(officer):
    seg, _ = _computed(officer)
    small, _ = _computed(officer, key="tiny", n=40, name="Tiny", seed=2)
    SegmentFactory(user=officer, key="never-computed")
    report = lift_report(segment=seg)
    html = _login(officer).get("/admin/officer/dashboard/").content.decode()
    module = html[html.index('id="lift"') : html.index("</table>", html.index('id="lift-table"'))]
    row = module[module.index('data-segment="deal-makers"') :].split("</tr>")[0]
    assert f"{report['treatment']['units']} / {report['control']['units']}" in row
    low, high = report["absolute_lift_ci"]
    assert f"{report['absolute_lift']:.4f}" in row and f"{low:.4f} to {high:.4f}" in row
    assert f"{report['relative_lift']:.3f}" in row
    assert "badge ok" in row  # no sample ratio mismatch
    tiny = module[module.index('data-segment="tiny"') :].split("</tr>")[0]
    assert "not enough data" in tiny and small.key in tiny
    assert "never-computed" not in module
    assert "<svg" in module and "Absolute lift with 95% interval" in module


def test_dashboard_flags_a_sample_ratio_mismatch(officer):
    _computed(officer)
    Segment.objects.filter(key="deal-makers").update(control_group_share="0.05")
    html = _login(officer).get("/admin/officer/dashboard/").content.decode()
    row = html[html.index('data-segment="deal-makers"') :].split("</tr>")[0]
    assert "lift-srm-flag" in row and "mismatch" in row


def test_dashboard_hides_lift_without_the_segment_permission(officer):
    _computed(officer)
    reader = StaffFactory(username="dsar-reader", group=None)
    reader.user_permissions.add(
        Permission.objects.get(codename="view_privacyrequest", content_type__app_label="dsar")
    )
    response = _login(StaffFactory._meta.model.objects.get(pk=reader.pk)).get(
        "/admin/officer/dashboard/"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="lift"' not in html and "deal-makers" not in html


def test_a_window_lengthened_past_the_computed_horizon_breaks_no_page(officer):
    seg, _ = _computed(officer)
    Segment.objects.filter(pk=seg.pk).update(attribution_window_days=500)  # horizon was 365
    client = _login(officer)
    dashboard = client.get("/admin/officer/dashboard/")
    assert dashboard.status_code == 200 and 'data-segment="deal-makers"' not in (
        dashboard.content.decode()
    )
    page = client.get(f"/admin/officer/segments/{seg.key}/")
    assert page.status_code == 200 and 'id="segment-lift-missing"' in page.content.decode()
    assert "(required)" not in page.content.decode()


def test_dashboard_says_when_nothing_is_computed(officer):
    SegmentFactory(user=officer, key="plain")
    html = _login(officer).get("/admin/officer/dashboard/").content.decode()
    assert 'id="lift-none"' in html


# --- the quarterly review -------------------------------------------------------------------


def test_review_page_shows_the_lift_since_the_last_review(officer):
    seg, _ = _computed(officer)
    html = _login(officer).get(f"/admin/officer/segments/{seg.key}/").content.decode()
    since = lift_report(segment=seg, period="since_review")
    panel = html[html.index('id="segment-review-module"') :]
    assert "since the last review" in panel and '<svg class="lift-chart"' in panel
    assert f"<td>{since['treatment']['units']}</td>" in panel
    assert 'name="decision"' in panel and "(required)" in panel


def test_review_records_decision_with_its_figures_and_audits_them(officer):
    seg, stays = _computed(officer)
    before = lift_report(segment=seg, period="since_review")
    client = _login(officer)
    response = client.post(
        f"/admin/officer/segments/{seg.key}/review/",
        {"decision": "iterate", "note": "lifted: widen the play", "next": "detail"},
        follow=True,
    )
    assert "with the decision: Iterate" in response.content.decode()
    review = SegmentReview.objects.get(segment=seg)
    assert (review.decision, review.note, review.reviewed_by) == (
        "iterate",
        "lifted: widen the play",
        officer,
    )
    assert review.reviewed_at == Segment.objects.get(pk=seg.pk).last_reviewed_at
    figures = review.lift
    assert figures["period"] == "since_review"
    assert figures["treatment"]["units"] == before["treatment"]["units"]
    assert figures["control"]["units"] == before["control"]["units"]
    assert figures["absolute_lift"] == f"{before['absolute_lift']:.6f}"
    assert figures["absolute_lift_ci"] == [f"{v:.6f}" for v in before["absolute_lift_ci"]]
    [entry] = events("default", AuditCode.SEGMENT_REVIEWED)
    assert entry.object_id == seg.key and entry.actor_id == str(officer.pk)
    assert entry.payload["decision"] == "iterate"
    assert entry.payload["lift"] == figures
    dumped = json.dumps(entry.payload)
    assert "widen the play" not in dumped  # the note stays on the review row
    assert not any(str(s.subject_id) in dumped for s in stays)
    page = client.get(f"/admin/officer/segments/{seg.key}/").content.decode()
    history = page[page.index('id="review-history"') :]
    assert 'data-decision="iterate"' in history and officer.username in history


def test_review_refuses_a_missing_or_unknown_decision_with_clear_errors(officer):
    seg, _ = _computed(officer)
    client = _login(officer)
    for data, message in (
        ({}, "Record what this review decided on the lift: iterate, keep or cut."),
        ({"decision": "shrug"}, "Select a valid choice."),
        ({"decision": "keep", "note": "x" * 2001}, "at most 2000 characters"),
    ):
        response = client.post(f"/admin/officer/segments/{seg.key}/review/", data)
        assert response.status_code == 200
        assert message in response.content.decode(), data
    assert not SegmentReview.objects.exists()
    assert Segment.objects.get(pk=seg.pk).last_reviewed_at is None
    assert events("default", AuditCode.SEGMENT_REVIEWED) == []
    with pytest.raises(SegmentGovernanceError) as refused:
        segment_review(segment=seg, user=officer, decision="maybe")
    assert refused.value.field == "decision"


def test_review_without_a_computed_lift_needs_no_decision(officer):
    seg = SegmentFactory(user=officer, key="plain")
    _login(officer).post(f"/admin/officer/segments/{seg.key}/review/")
    review = SegmentReview.objects.get(segment=seg)
    assert (review.decision, review.lift) == ("", None)
    [entry] = events("default", AuditCode.SEGMENT_REVIEWED)
    assert entry.payload["decision"] == "" and entry.payload["lift"] is None


def test_the_next_review_sees_only_stays_since_this_one(officer):
    seg, _ = _computed(officer)
    segment_review(segment=seg, user=officer, decision="keep")
    lift_compute(region="eu", segment=Segment.objects.get(pk=seg.pk))
    since = lift_report(segment=Segment.objects.get(pk=seg.pk), period="since_review")
    assert since["treatment"]["units"] + since["control"]["units"] == 0
    assert lift_report(segment=seg)["treatment"]["units"] > 0


# --- evidence report and bundle -------------------------------------------------------------


def test_evidence_report_and_bundle_carry_lift_figures_and_no_subject(officer, tmp_path):
    seg, stays = _computed(officer)
    segment_review(segment=seg, user=officer, decision="cut")
    report = lift_report(segment=seg)
    officer.user_permissions.add(Permission.objects.get(codename="export_auditevent"))
    today = timezone.now().date()
    query = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    html = _login(officer).get("/admin/audit/auditevent/report/", query).content.decode()
    row = html[html.index('class="lift-row" data-segment="deal-makers"') :].split("</tr>")[0]
    assert f"{report['treatment']['units']} / {report['control']['units']}" in row
    assert f"{report['absolute_lift']:.6f}" in row
    assert f"{report['relative_lift_ci'][0]:.6f}" in row
    assert f"{report['srm_p_value']:.6f}" in row
    assert report["computed_at"].isoformat()[:16] in row
    decision = html[html.index('class="lift-decision"') :].split("</tr>")[0]
    assert "deal-makers" in decision and "cut" in decision
    subject_ids = {str(s.subject_id) for s in stays}
    assert not any(sid in html for sid in subject_ids)

    start = timezone.now() - timedelta(days=1)
    out = tmp_path / "bundle.zip"
    audit_export(
        start=start, end=timezone.now() + timedelta(days=1), out=out, actor=Actor.user(officer)
    )
    with zipfile.ZipFile(out) as archive:
        lift = json.loads(archive.read("lift.json"))
        manifest = json.loads(archive.read("manifest.json"))
        bundle_report = archive.read("report.html").decode()
    assert "lift.json" in manifest["files"]
    [figures] = lift["segments"]
    assert figures["segment"] == "deal-makers"
    assert figures["treatment"]["units"] == report["treatment"]["units"]
    assert figures["srm_flag"] is False and figures["computed_at"]
    assert [d["decision"] for d in lift["review_decisions"]] == ["cut"]
    text = json.dumps(lift) + bundle_report
    assert not any(sid in text for sid in subject_ids)


# --- control group share fixed once activated -----------------------------------------------


def test_share_change_after_activation_is_refused_by_the_service(officer):
    draft = SegmentFactory(user=officer, key="draft-seg", status="draft")
    assert segment_update(segment=draft, changes={"control_group_share": "0.2"}, user=officer)
    active = SegmentFactory(user=officer, key="live-seg", holdout=True)
    assert active.holdout_salt
    with pytest.raises(SegmentGovernanceError) as refused:
        segment_update(segment=active, changes={"control_group_share": "0.2"}, user=officer)
    assert (refused.value.code, refused.value.field) == ("share_fixed", "control_group_share")
    assert "Create a new segment" in str(refused.value)
    assert str(Segment.objects.get(pk=active.pk).control_group_share) == "0.100"
    # the same share again, or other fields, still go through
    same = segment_update(
        segment=active, changes={"control_group_share": "0.1", "name": "Renamed"}, user=officer
    )
    assert same.name == "Renamed"


def test_share_change_after_activation_is_refused_by_the_api(officer):
    api = client_for("editor", ["segments:write", "segments:read"], user=officer)
    active = SegmentFactory(user=officer, key="live-seg", holdout=True)
    refused = api.patch(
        f"/api/v1/segments/{active.key}/", {"control_group_share": "0.2"}, format="json"
    )
    assert refused.status_code == 400, refused.json()
    error = refused.json()["error"]
    assert "control_group_share" in error["fields"] and "new segment" in error["message"]
    assert str(Segment.objects.get(pk=active.pk).control_group_share) == "0.100"
    renamed = api.patch(f"/api/v1/segments/{active.key}/", {"name": "New name"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "New name"
    draft = SegmentFactory(user=officer, key="draft-seg", status="draft")
    moved = api.patch(
        f"/api/v1/segments/{draft.key}/", {"control_group_share": "0.25"}, format="json"
    )
    assert moved.status_code == 200 and moved.json()["control_group_share"] == "0.250"
    assert api.patch("/api/v1/segments/nope/", {"name": "x"}, format="json").status_code == 404


def test_share_is_read_only_in_the_admin_once_activated(officer):
    client = _login(officer)
    draft = SegmentFactory(user=officer, key="draft-seg", status="draft")
    active = SegmentFactory(user=officer, key="live-seg", holdout=True)
    assert (
        'name="control_group_share"'
        in client.get(f"/admin/segments/segment/{draft.pk}/change/").content.decode()
    )
    page = client.get(f"/admin/segments/segment/{active.pk}/change/").content.decode()
    assert 'name="control_group_share"' not in page and "0.100" in page
