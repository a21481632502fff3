"""API shapes of the tracking plan and instrumentation endpoints (documentation of the
OpenAPI schema; bodies are validated by ``compliance.plans.documents`` and built below)."""

from __future__ import annotations

from rest_framework import serializers

from compliance.plans.models import Mode, TrackingPlan


class PlannedEventSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    owner = serializers.CharField(required=False, allow_blank=True)
    schema = serializers.DictField(help_text="JSON Schema (draft 2020-12) of the properties")


class TrackingPlanInputSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=Mode.values)
    events = PlannedEventSerializer(many=True)
    identifier_types = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="empty: any type"
    )


class TrackingPlanVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    mode = serializers.CharField()
    sha256 = serializers.CharField(help_text="SHA-256 of the plan's canonical JSON")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    events = PlannedEventSerializer(many=True)
    identifier_types = serializers.ListField(child=serializers.CharField())


class TrackingPlanOutputSerializer(serializers.Serializer):
    source = serializers.CharField()
    current = TrackingPlanVersionSerializer(allow_null=True)
    versions = TrackingPlanVersionSerializer(many=True, help_text="newest first")


class ViolationCountSerializer(serializers.Serializer):
    type = serializers.CharField()
    path = serializers.CharField()
    event = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField(allow_null=True)


class UnplannedEventSerializer(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField(allow_null=True)


class DailyCountSerializer(serializers.Serializer):
    day = serializers.DateField()
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    refused = serializers.IntegerField()
    violating = serializers.IntegerField()


class SourceInstrumentationSerializer(serializers.Serializer):
    source = serializers.CharField()
    plan_version = serializers.IntegerField(allow_null=True)
    mode = serializers.CharField(allow_null=True)
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    refused = serializers.IntegerField()
    violating = serializers.IntegerField()
    share_valid = serializers.FloatField()
    share_violating = serializers.FloatField()
    share_refused = serializers.FloatField()
    top_violations = ViolationCountSerializer(many=True)
    unplanned_events = UnplannedEventSerializer(many=True)
    daily = DailyCountSerializer(many=True)


class InstrumentationOutputSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    sources = SourceInstrumentationSerializer(many=True)


def plan_version_data(plan: TrackingPlan) -> dict:
    return {
        "version": plan.version,
        "mode": plan.mode,
        "sha256": plan.sha256,
        "created_at": plan.created_at.isoformat().replace("+00:00", "Z"),
        "created_by": plan.created_by,
        "events": plan.events,
        "identifier_types": plan.identifier_types,
    }
