"""``GET /api/v1/segments/{key}/lift/``: the segment's lift against its control group."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from compliance.api.views import ApiView
from compliance.errors import InputError
from segments.api.views import segment_or_404
from segments.models import LiftPeriod
from segments.selectors.lift import lift_report

MAX_WINDOW_DAYS = 3650


class LiftArmOutput(serializers.Serializer):
    units = serializers.IntegerField()
    conversions = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)
    valued_conversions = serializers.IntegerField(allow_null=True)
    mean_value = serializers.FloatField(allow_null=True)
    median_cycle_days = serializers.FloatField(allow_null=True)
    cumulative_conversion_rate = serializers.ListField(
        child=serializers.FloatField(),
        help_text="conversion rate reached 1, 2, ... window_days days after entry",
    )


class LiftWarningOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class LiftReportOutput(serializers.Serializer):
    segment = serializers.CharField()
    window_days = serializers.IntegerField()
    period = serializers.ChoiceField(choices=LiftPeriod.choices)
    since = serializers.DateTimeField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    regions = serializers.ListField(child=serializers.CharField())
    conversion_event = serializers.CharField(allow_blank=True)
    value_property = serializers.CharField(allow_blank=True)
    control_share = serializers.FloatField()
    min_units = serializers.IntegerField()
    treatment = LiftArmOutput()
    control = LiftArmOutput()
    enough_data = serializers.BooleanField()
    absolute_lift = serializers.FloatField(allow_null=True)
    absolute_lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    relative_lift = serializers.FloatField(allow_null=True)
    relative_lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    mean_value_difference = serializers.FloatField(allow_null=True)
    mean_value_difference_ci = serializers.ListField(
        child=serializers.FloatField(), allow_null=True
    )
    srm_chi2 = serializers.FloatField()
    srm_p_value = serializers.FloatField()
    srm_flag = serializers.BooleanField()
    warnings = LiftWarningOutput(many=True)


def _window_param(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WINDOW_DAYS:
        raise InputError(
            "window_days must be a whole number of days",
            fields={"window_days": [f"expected 1..{MAX_WINDOW_DAYS}"]},
        )
    return int(raw)


class SegmentLiftView(ApiView):
    required_scopes = "segments:read"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "window_days",
                OpenApiTypes.INT,
                description="attribution window in days (default: the segment's own)",
            ),
            OpenApiParameter(
                "period",
                OpenApiTypes.STR,
                enum=LiftPeriod.values,
                description="all stays (default) or those that entered since the last review",
            ),
        ],
        responses=LiftReportOutput,
        operation_id="segments_lift",
        summary="Lift of a segment against its control group (aggregates of every region)",
    )
    def get(self, request, key: str):
        segment = segment_or_404(key)
        period = request.query_params.get("period") or LiftPeriod.ALL
        report = lift_report(
            segment=segment,
            window_days=_window_param(request.query_params.get("window_days")),
            period=period,
        )
        return Response(LiftReportOutput(report).data)
