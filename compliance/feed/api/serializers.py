"""Input and output of the pull feed."""

from __future__ import annotations

from rest_framework import serializers

from compliance.feed.models import ChangeKind, SubscriptionArm
from compliance.regions import regions


class ChangesInput(serializers.Serializer):
    region = serializers.CharField()
    after = serializers.CharField(required=False, allow_blank=True, default="")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)
    type = serializers.MultipleChoiceField(choices=ChangeKind.values, required=False)
    arm = serializers.ChoiceField(
        choices=SubscriptionArm.values, required=False, default=SubscriptionArm.TREATMENT
    )

    def validate_region(self, value: str) -> str:
        if value not in regions():
            raise serializers.ValidationError(f"unknown region; configured: {regions()}")
        return value


class ChangeOutput(serializers.Serializer):
    id = serializers.UUIDField(help_text="idempotency id: apply each change once")
    type = serializers.CharField(help_text="enter, exit, retract or consent")
    region = serializers.CharField()
    subject_id = serializers.UUIDField()
    segment = serializers.CharField(allow_null=True)
    purpose = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True)
    decision = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    arm = serializers.CharField(
        allow_null=True, help_text="holdout arm of a membership change: treatment or control"
    )
    occurred_at = serializers.CharField()


class ChangesPageOutput(serializers.Serializer):
    changes = ChangeOutput(many=True)
    next_cursor = serializers.CharField(help_text="pass as ?after= for the next page")
    next = serializers.URLField(help_text="this query from next_cursor on (the feed only grows)")
    has_more = serializers.BooleanField()
