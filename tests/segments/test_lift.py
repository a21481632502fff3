"""The lift report: every figure against an independent computation on synthetic data with a
known effect; sample ratio mismatch; not enough data; the control database holds aggregates."""

from __future__ import annotations

import io
import statistics
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from segments import schedule
from segments.holdout import CONTROL, TREATMENT
from segments.models import LiftAggregate, LiftComputation, Segment
from segments.selectors.lift import LiftInputError, lift_report
from segments.services.lift import lift_compute
from segments.tasks import lift_compute as lift_task
from tests.factories import SegmentFactory
from tests.segments import lift_data
from tests.segments.helpers import events

pytestmark = pytest.mark.django_db(databases="__all__")
scipy_stats = pytest.importorskip("scipy.stats")


def _measured(officer, share="0.3", **kw):
    seg = SegmentFactory(user=officer, control_group_share=share)
    Segment.objects.filter(pk=seg.pk).update(
        conversion_event="deal_won",
        value_property="amount",
        holdout_salt="0f1e2d3c4b5a69788796a5b4c3d2e1f0",  # fixed: the split is reproducible
        **kw,
    )
    return Segment.objects.get(pk=seg.pk)


def test_every_figure_matches_an_independent_computation(officer):
    seg = _measured(officer)
    now = timezone.now()
    stays = lift_data.build(region="eu", segment=seg, n=3000, now=now, rate_t=0.30, rate_c=0.18)
    run = lift_compute(region="eu", segment=seg)
    assert run.stays == 3000 and run.region == "eu"

    for window in (90, 30):
        want = lift_data.expected(stays, window=window)
        report = lift_report(segment=seg, window_days=window)
        t, c = want[TREATMENT], want[CONTROL]
        for arm, name in ((t, "treatment"), (c, "control")):
            got = report[name]
            assert got["units"] == arm["units"]
            assert got["conversions"] == arm["conversions"]
            assert got["conversion_rate"] == pytest.approx(arm["conversions"] / arm["units"])
            assert got["median_cycle_days"] == arm["median_days"]
            if window == seg.attribution_window_days:
                assert got["valued_conversions"] == len(arm["values"])
                assert got["mean_value"] == pytest.approx(statistics.mean(arm["values"]))
            else:  # values are kept for the segment's own window only
                assert got["mean_value"] is None
        p_t, p_c = t["conversions"] / t["units"], c["conversions"] / c["units"]
        z = statistics.NormalDist().inv_cdf(0.975)
        se = (p_t * (1 - p_t) / t["units"] + p_c * (1 - p_c) / c["units"]) ** 0.5
        assert report["absolute_lift"] == pytest.approx(p_t - p_c)
        assert report["absolute_lift_ci"] == pytest.approx([p_t - p_c - z * se, p_t - p_c + z * se])
        var = p_t * (1 - p_t) / (t["units"] * p_c**2) + p_t**2 * p_c * (1 - p_c) / (
            c["units"] * p_c**4
        )
        rel = (p_t - p_c) / p_c
        assert report["relative_lift"] == pytest.approx(rel)
        assert report["relative_lift_ci"] == pytest.approx([rel - z * var**0.5, rel + z * var**0.5])
        if window == seg.attribution_window_days:
            welch = scipy_stats.ttest_ind(t["values"], c["values"], equal_var=False)
            ci = welch.confidence_interval(0.95)
            assert report["mean_value_difference"] == pytest.approx(
                statistics.mean(t["values"]) - statistics.mean(c["values"])
            )
            assert report["mean_value_difference_ci"] == pytest.approx([ci.low, ci.high], rel=1e-6)
        else:
            assert report["mean_value_difference"] is None
            assert "values_for_own_window" in {w["code"] for w in report["warnings"]}
        srm = scipy_stats.chisquare([t["units"], c["units"]], [3000 * 0.7, 3000 * 0.3])
        assert report["srm_p_value"] == pytest.approx(srm.pvalue)
        assert report["srm_flag"] is False
        assert report["enough_data"] is True
    # the known effect shows: treatment converts more, and the interval excludes zero
    assert lift_report(segment=seg)["absolute_lift_ci"][0] > 0


def test_sample_ratio_mismatch_is_flagged(officer):
    seg = _measured(officer, share="0.5")
    rng = iter(range(10**6))

    def lopsided(_sid):  # 70/30 where 50/50 was configured
        return CONTROL if next(rng) % 10 < 3 else TREATMENT

    lift_data.build(
        region="eu",
        segment=seg,
        n=1000,
        now=timezone.now(),
        rate_t=0.2,
        rate_c=0.2,
        arm_of=lopsided,
    )
    lift_compute(region="eu", segment=seg)
    report = lift_report(segment=seg)
    want = scipy_stats.chisquare([700, 300], [500, 500])
    assert report["srm_p_value"] == pytest.approx(want.pvalue)
    assert report["srm_flag"] is True
    assert "sample_ratio_mismatch" in {w["code"] for w in report["warnings"]}


def test_not_enough_data_gives_no_lift(officer):
    seg = _measured(officer, share="0.005")
    lift_data.build(region="eu", segment=seg, n=150, now=timezone.now(), rate_t=0.5, rate_c=0.5)
    lift_compute(region="eu", segment=seg)
    report = lift_report(segment=seg)
    assert report["enough_data"] is False
    assert report["absolute_lift"] is None and report["relative_lift_ci"] is None
    codes = {w["code"] for w in report["warnings"]}
    assert {"not_enough_data", "low_control_share"} <= codes
    assert report["treatment"]["units"] + report["control"]["units"] == 150


def test_recent_stays_warn_that_the_window_has_not_elapsed(officer):
    seg = _measured(officer)
    lift_data.build(region="eu", segment=seg, n=300, now=timezone.now(), rate_t=0.3, rate_c=0.3)
    lift_compute(region="eu", segment=seg)
    assert "window_not_elapsed" in {
        w["code"] for w in lift_report(segment=seg, window_days=180)["warnings"]
    }
    assert "window_not_elapsed" not in {
        w["code"] for w in lift_report(segment=seg, window_days=2)["warnings"]
    }


def test_window_outside_the_horizon_is_refused_naming_the_field(officer):
    seg = _measured(officer)
    lift_compute(region="eu", segment=seg)
    with pytest.raises(LiftInputError) as caught:
        lift_report(segment=seg, window_days=10_000)
    assert caught.value.field == "window_days"
    with pytest.raises(LiftInputError):
        lift_report(segment=seg, window_days=0)


def test_recompute_replaces_and_since_review_counts_later_stays(officer):
    now = timezone.now()
    seg = _measured(officer, last_reviewed_at=now - timedelta(days=60))
    stays = lift_data.build(region="eu", segment=seg, n=500, now=now, rate_t=0.3, rate_c=0.2)
    lift_compute(region="eu", segment=seg)
    first = sorted(
        LiftAggregate.objects.filter(segment_key=seg.key).values_list("units", flat=True)
    )
    lift_compute(region="eu", segment=seg)
    again = sorted(
        LiftAggregate.objects.filter(segment_key=seg.key).values_list("units", flat=True)
    )
    assert first == again and LiftAggregate.objects.filter(segment_key=seg.key).count() == 4
    assert LiftComputation.objects.filter(segment_key=seg.key).count() == 1
    review_day = seg.last_reviewed_at.date()
    recent = [s for s in stays if s.entered_at.date() >= review_day]
    report = lift_report(segment=seg, period="since_review")
    assert report["treatment"]["units"] + report["control"]["units"] == len(recent)
    assert report["since"] == seg.last_reviewed_at
    want = lift_data.expected(recent, window=90)
    assert report["treatment"]["conversions"] == want["treatment"]["conversions"]
    whole = lift_report(segment=seg)
    assert whole["treatment"]["units"] + whole["control"]["units"] == 500
    with pytest.raises(LiftInputError) as caught:
        lift_report(segment=seg, period="last_year")
    assert caught.value.field == "period"


def test_control_database_holds_only_aggregates(officer):
    """Residency: the lift rows in the control database name no subject and no value."""
    seg = _measured(officer)
    stays = lift_data.build(
        region="eu", segment=seg, n=400, now=timezone.now(), rate_t=0.4, rate_c=0.2
    )
    lift_compute(region="eu", segment=seg)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM segments_liftaggregate")
        dump = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM segments_liftcomputation")
        dump += repr(cursor.fetchall())
    assert dump.count(seg.key) > 0
    for stay in stays:
        assert str(stay.subject_id) not in dump and stay.subject_id.hex not in dump
    # values are summed per arm, never listed: no single amount appears
    amounts = {v for s in stays for _, v, _ in s.events if v is not None and v > 100}
    assert not [v for v in amounts if repr(v) in dump or str(v) in dump]
    tables = connections["default"].introspection.table_names()
    assert "segments_segmentmembership" not in tables and "events_event" not in tables


def test_a_region_with_few_values_stores_no_sums(officer):
    seg = _measured(officer)
    lift_data.build(region="eu", segment=seg, n=12, now=timezone.now(), rate_t=0.2, rate_c=0.2)
    lift_compute(region="eu", segment=seg)
    rows = LiftAggregate.objects.filter(segment_key=seg.key)
    assert rows.count() == 4
    for row in rows:
        assert row.valued is None and row.value_sum is None and row.value_sum_squares is None


def test_command_computes_now_and_prints_the_figures(officer):
    seg = _measured(officer)
    lift_data.build(region="eu", segment=seg, n=600, now=timezone.now(), rate_t=0.3, rate_c=0.1)
    out = io.StringIO()
    call_command("lift_compute", "--segment", seg.key, stdout=out)
    text = out.getvalue()
    report = lift_report(segment=seg)
    assert f"eu: {seg.key}: 600 stays" in text
    assert f"units {report['treatment']['units']:>9,}" in text
    assert "absolute lift" in text and "sample ratio: p =" in text
    with pytest.raises(CommandError, match="--segment: no segment with key 'nope'"):
        call_command("lift_compute", "--segment", "nope")
    with pytest.raises(CommandError, match="--region"):
        call_command("lift_compute", "--region", "mars")


def test_task_runs_in_the_region_for_every_activated_segment(officer):
    seg = _measured(officer)
    never = SegmentFactory(user=officer, status="approved")  # no salt: not measured
    lift_data.build(region="eu", segment=seg, n=50, now=timezone.now(), rate_t=0.3, rate_c=0.1)
    result = lift_task.apply(kwargs={"region": "eu"}).get()
    assert result[seg.key] == 50 and never.key not in result
    assert LiftComputation.objects.get(segment_key=seg.key, region="eu").stays == 50


def test_beat_computes_the_lift_hourly_in_every_region():
    from compliance.conf import compliance_settings

    lift = {k: v for k, v in schedule.BEAT_SCHEDULE.items() if k.startswith("segments-lift-")}
    assert sorted(lift) == sorted(f"segments-lift-{r}" for r in compliance_settings.REGIONS)
    for region in compliance_settings.REGIONS:
        entry = lift[f"segments-lift-{region}"]
        assert entry["task"] == lift_task.name == "segments.lift_compute"
        assert entry["kwargs"] == {"region": region}
        # hourly: one minute of every hour
        assert entry["schedule"].minute == {17} and len(entry["schedule"].hour) == 24


def test_api_returns_the_report_with_scope_and_refuses_bad_input(officer):
    from tests.segments.test_api import client_for

    seg = _measured(officer)
    lift_data.build(region="eu", segment=seg, n=600, now=timezone.now(), rate_t=0.3, rate_c=0.1)
    lift_compute(region="eu", segment=seg)
    reader = client_for("lift-reader", ["segments:read"])
    body = reader.get(f"/api/v1/segments/{seg.key}/lift/?window_days=60").json()
    report = lift_report(segment=seg, window_days=60)
    for name in ("units", "conversions", "conversion_rate"):
        assert body["treatment"][name] == report["treatment"][name]
        assert body["control"][name] == report["control"][name]
    for name in ("absolute_lift", "absolute_lift_ci", "relative_lift", "relative_lift_ci"):
        assert body[name] == pytest.approx(report[name])
    assert body["srm_p_value"] == pytest.approx(report["srm_p_value"])
    assert body["srm_flag"] is False and body["window_days"] == 60
    assert reader.get(f"/api/v1/segments/{seg.key}/lift/?period=since_review").status_code == 200
    for query, field in (
        ("window_days=abc", "window_days"),
        ("window_days=0", "window_days"),
        ("window_days=400", "window_days"),
        ("period=ever", "period"),
    ):
        bad = reader.get(f"/api/v1/segments/{seg.key}/lift/?{query}")
        assert bad.status_code == 400, query
        assert field in bad.json()["error"]["fields"], bad.json()
    assert reader.get("/api/v1/segments/nope/lift/").status_code == 404
    writer = client_for("lift-writer", ["segments:write"])
    assert writer.get(f"/api/v1/segments/{seg.key}/lift/").status_code == 403


def test_admin_page_shows_the_lift_panel_and_chart(officer):
    from django.test import Client

    seg = _measured(officer)
    lift_data.build(region="eu", segment=seg, n=600, now=timezone.now(), rate_t=0.3, rate_c=0.1)
    lift_compute(region="eu", segment=seg)
    report = lift_report(segment=seg)
    client = Client()
    client.force_login(officer)
    html = client.get(f"/admin/segments/segment/{seg.pk}/change/").content.decode()
    assert f'id="lift-{seg.key}"' in html and '<svg class="lift-chart"' in html
    assert f"<td>{report['treatment']['units']}</td>" in html
    assert f"<td>{report['control']['units']}</td>" in html
    assert "Absolute lift" in html and "Sample ratio check" in html


def test_measurement_plan_through_the_api_and_salt_drawn_once_at_activation(officer):
    from compliance.audit.codes import AuditCode
    from segments.services.definitions import segment_activate, segment_approve, segment_pause
    from tests.segments.test_api import client_for

    tool = client_for("planner", ["segments:write", "segments:read"])
    body = {
        "key": "deal-makers",
        "name": "Deal makers",
        "layers": ["intent"],
        "owner": "officer1",
        "motion": "sales_play",
        "measurement_metric": "deals won",
        "control_group_share": "0.1",
        "conversion_event": "deal_won",
        "value_property": "amount",
        "attribution_window_days": 60,
    }
    created = tool.post("/api/v1/segments/", body, format="json")
    assert created.status_code == 201, created.json()
    out = created.json()
    assert (out["conversion_event"], out["value_property"], out["attribution_window_days"]) == (
        "deal_won",
        "amount",
        60,
    )
    bad = tool.post(
        "/api/v1/segments/", {**body, "key": "x2", "attribution_window_days": 0}, format="json"
    )
    assert bad.status_code == 400 and "attribution_window_days" in bad.json()["error"]["fields"]
    seg = Segment.objects.get(key="deal-makers")
    assert seg.holdout_salt == ""
    seg = segment_approve(segment=seg, user=officer)
    seg = segment_activate(segment=seg, user=officer)
    salt = seg.holdout_salt
    assert len(salt) == 32
    [entry] = [
        e
        for e in events("default", AuditCode.SEGMENT_STATUS_CHANGED)
        if e.payload.get("to") == "active" and e.object_id == "deal-makers"
    ]
    assert entry.payload["holdout_salt"] == salt and "holdout_salt" in entry.payload["fields"]
    seg = segment_activate(segment=segment_pause(segment=seg, user=officer), user=officer)
    assert seg.holdout_salt == salt  # the salt stands: arms never change
