"""API shapes of ``POST /api/v1/events/``.

The input serializers document the request in the OpenAPI schema; the batch itself is
validated by ``compliance.events.parsing.event_batch_parse`` (same rules, faster on 1,000
nested events, field paths such as ``events[3].purpose``).
"""

from __future__ import annotations

from rest_framework import serializers

from compliance.events.parsing import MAX_BATCH, MAX_IDENTIFIERS
from compliance.models import IdentifierType


class IdentifierInputSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="one of: " + ", ".join(IdentifierType.values))
    value = serializers.CharField(max_length=320)


class ConsentSignalInputSerializer(serializers.Serializer):
    tc_string = serializers.CharField(
        required=False, help_text="IAB TCF v2.2/2.3 TC string; recorded before evaluation"
    )
    gpc = serializers.BooleanField(
        required=False, help_text="true when the event came with Sec-GPC: 1 (opt-out)"
    )


class EventInputSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="event source key, e.g. web")
    identifiers = IdentifierInputSerializer(many=True, max_length=MAX_IDENTIFIERS)
    event = serializers.CharField(max_length=200, help_text="event name")
    properties = serializers.DictField(required=False, help_text="free-form JSON object")
    time = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset")
    purpose = serializers.CharField(help_text="purpose key the event is collected for")
    consent_signal = ConsentSignalInputSerializer(required=False)
    jurisdiction = serializers.CharField(required=False, help_text='e.g. "FR" or "US-CA"')
    id = serializers.CharField(
        required=False, max_length=128, help_text="client event id, unique per source"
    )


class EventBatchInputSerializer(serializers.Serializer):
    events = EventInputSerializer(many=True, max_length=MAX_BATCH, min_length=1)


class ViolationSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="unplanned_event, required_missing, datatype_mismatch, additional_property, "
        "invalid_value or identifier_type_not_allowed"
    )
    path = serializers.CharField(help_text="JSON path in the event, e.g. $.properties.plan")
    message = serializers.CharField(help_text="what the plan asks (never the value sent)")


class EventOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True, help_text="the client event id, if sent")
    status = serializers.CharField(help_text='"accepted" or "rejected"')
    reason = serializers.CharField(help_text="basis when accepted, why not when rejected")
    event_id = serializers.IntegerField(allow_null=True)
    duplicate = serializers.BooleanField()
    violations = ViolationSerializer(
        many=True,
        required=False,
        help_text="what the source's tracking plan found; absent when the source has no plan",
    )


class EventBatchResultSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    received_at = serializers.DateTimeField()
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventOutcomeSerializer(many=True)


def batch_result_data(*, result, events) -> dict:
    """The response body (built directly: 1,000 outcomes through DRF fields is slow).
    ``violations`` is there for events whose source has a tracking plan (today's shape
    otherwise)."""
    violations = result.violations or (None,) * len(result.outcomes)
    results = []
    for outcome, found in zip(result.outcomes, violations, strict=True):
        row = {
            "index": outcome.index,
            "id": events[outcome.index].client_event_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "event_id": outcome.event_id,
            "duplicate": outcome.duplicate,
        }
        if found is not None:
            row["violations"] = [v.as_json() for v in found]
        results.append(row)
    return {
        "batch_id": result.batch_id,
        "received_at": result.received_at.isoformat().replace("+00:00", "Z"),
        "accepted": result.accepted,
        "rejected": result.rejected,
        "results": results,
    }
