"""Input and output serializers of the segments API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from segments.models import Layer, Motion, Origin, Segment, SegmentMembership
from segments.selectors.segments import segment_review_due
from segments.services.definitions import PLAN_FIELDS

MAX_CHANGES = 10_000


class SegmentInput(serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    layers = serializers.ListField(
        child=serializers.ChoiceField(choices=Layer.choices), allow_empty=False
    )
    required_purposes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    origin = serializers.ChoiceField(choices=Origin.choices, default=Origin.MANUAL)
    owner = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="username of a staff user"
    )
    motion = serializers.ChoiceField(
        choices=Motion.choices, required=False, allow_blank=True, default=""
    )
    motion_detail = serializers.CharField(required=False, allow_blank=True, default="")
    measurement_metric = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    control_group_share = serializers.DecimalField(
        max_digits=4,
        decimal_places=3,
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=1,
    )
    conversion_event = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="the event that counts as a conversion for the lift report, e.g. deal_won",
    )
    value_property = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="the conversion event's property holding its value, e.g. amount",
    )
    attribution_window_days = serializers.IntegerField(
        min_value=1,
        max_value=1095,
        default=90,
        help_text="days after entry during which a conversion counts",
    )
    review_interval_days = serializers.IntegerField(min_value=1, max_value=3650, default=90)

    def validate_owner(self, value):
        if not value:
            return None
        user = get_user_model().objects.filter(username=value, is_staff=True).first()
        if user is None:
            raise serializers.ValidationError("no staff user with this username")
        return user


class SegmentChangeInput(SegmentInput):
    """A definition edit (``PATCH``): only the fields sent change; ``key`` and ``origin`` are
    fixed, and ``control_group_share`` is fixed once the segment has been activated."""

    key = None
    origin = None


class SegmentOutput(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None)
    approved_by = serializers.CharField(
        source="approved_by.username", allow_null=True, default=None
    )
    review_due_at = serializers.DateTimeField(allow_null=True)
    review_due = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "key",
            "name",
            "description",
            "status",
            "origin",
            "layers",
            "required_purposes",
            *PLAN_FIELDS,
            "approved_by",
            "approved_at",
            "last_reviewed_at",
            "review_interval_days",
            "review_due_at",
            "review_due",
            "created_at",
            "updated_at",
        ]

    def get_review_due(self, obj) -> bool:
        return segment_review_due(segment=obj)


class SubjectItem(serializers.Serializer):
    """One subject: its ``subject_id``, or an identifier (``identifier_type`` and ``value``)."""

    subject_id = serializers.UUIDField(required=False)
    identifier_type = serializers.CharField(required=False, max_length=16)
    value = serializers.CharField(required=False, max_length=320)

    def validate(self, attrs):
        has_id = "subject_id" in attrs
        has_identifier = "identifier_type" in attrs and "value" in attrs
        if has_id == has_identifier:
            raise serializers.ValidationError("give either subject_id or identifier_type and value")
        return attrs


class MembershipsInput(serializers.Serializer):
    enters = SubjectItem(many=True, required=False, default=list)
    exits = SubjectItem(many=True, required=False, default=list)
    reason = serializers.CharField(default="criteria", max_length=24)
    jurisdiction = serializers.CharField(
        required=False, allow_null=True, default=None, max_length=8
    )

    def validate(self, attrs):
        if len(attrs["enters"]) + len(attrs["exits"]) > MAX_CHANGES:
            raise serializers.ValidationError(
                {"enters": [f"at most {MAX_CHANGES} enters and exits per call"]}
            )
        if not attrs["enters"] and not attrs["exits"]:
            raise serializers.ValidationError({"enters": ["nothing to enter or exit"]})
        return attrs


class RefusedItem(serializers.Serializer):
    item = serializers.CharField(help_text="which input item, e.g. enters[3]")
    subject_id = serializers.UUIDField(allow_null=True)
    reason = serializers.CharField()


class UnchangedItem(serializers.Serializer):
    subject_id = serializers.UUIDField()
    reason = serializers.CharField()


class MembershipsOutput(serializers.Serializer):
    entered = serializers.ListField(child=serializers.UUIDField())
    exited = serializers.ListField(child=serializers.UUIDField())
    unchanged = UnchangedItem(many=True)
    refused = RefusedItem(many=True)


class MemberOutput(serializers.ModelSerializer):
    class Meta:
        model = SegmentMembership
        fields = ["subject_id", "entered_at", "entered_reason", "arm", "consent_event_ids"]


class StayOutput(serializers.ModelSerializer):
    class Meta:
        model = SegmentMembership
        fields = [
            "id",
            "segment_key",
            "entered_at",
            "entered_reason",
            "arm",
            "exited_at",
            "exited_reason",
            "consent_event_ids",
        ]


class HistoryOutput(serializers.Serializer):
    subject_id = serializers.UUIDField()
    segment_key = serializers.CharField()
    region = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)
    member_at = serializers.BooleanField(allow_null=True, help_text="only when ?at= is given")
    stays = StayOutput(many=True)
