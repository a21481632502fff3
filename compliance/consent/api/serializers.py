"""Input and output serializers of the consent API."""

from __future__ import annotations

from rest_framework import serializers

from compliance.api.prebuilt import FieldsBuiltOnce
from compliance.consent.models import ConsentEvent, ConsentState, Decision, LawfulBasis, Method
from compliance.identifiers import IdentifierError, identifier_normalize
from compliance.models import IdentifierType

API_DECISIONS = [
    Decision.GRANTED,
    Decision.DENIED,
    Decision.WITHDRAWN,
    Decision.OBJECTED,
    Decision.OPTED_OUT,
]
API_METHODS = [Method.UI, Method.API, Method.IMPORT]
MAX_DECISIONS = 50
MAX_IDENTIFIERS = 10


class IdentifierIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=IdentifierType.choices)
    value = serializers.CharField(max_length=320, trim_whitespace=False)

    def validate(self, attrs):
        try:
            normalized = identifier_normalize(identifier_type=attrs["type"], value=attrs["value"])
        except IdentifierError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]})
        return {"type": normalized.type, "value": normalized.value}


class DecisionIn(serializers.Serializer):
    purpose = serializers.CharField(max_length=64)
    decision = serializers.ChoiceField(choices=API_DECISIONS)
    lawful_basis = serializers.ChoiceField(choices=LawfulBasis.choices, required=False)


class SignalIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=["tcf"])
    value = serializers.CharField(max_length=10_000, trim_whitespace=False)


class ConsentIn(FieldsBuiltOnce, serializers.Serializer):
    """One identifier (or several of one person, for stitching), where, and what was decided.

    Send ``decisions``, a raw ``signal``, or a ``Sec-GPC: 1`` header (or any combination)."""

    identifier = IdentifierIn(required=False)
    identifiers = IdentifierIn(many=True, required=False)
    jurisdiction = serializers.CharField(max_length=16, required=False, allow_blank=True)
    source = serializers.CharField(max_length=64)
    decisions = DecisionIn(many=True, required=False)
    signal = SignalIn(required=False)
    method = serializers.ChoiceField(choices=API_METHODS, default=Method.API)
    captured_at = serializers.DateTimeField(required=False)
    notice_version_id = serializers.IntegerField(required=False, min_value=1)
    collection_point = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate(self, attrs):
        if "identifier" in attrs and "identifiers" in attrs:
            raise serializers.ValidationError(
                {"identifiers": ["send either identifier or identifiers, not both"]}
            )
        identifiers = attrs.pop("identifiers", None)
        if identifiers is None:
            if "identifier" not in attrs:
                raise serializers.ValidationError({"identifier": ["an identifier is required"]})
            identifiers = [attrs.pop("identifier")]
        if not identifiers:
            raise serializers.ValidationError({"identifiers": ["at least one identifier"]})
        if len(identifiers) > MAX_IDENTIFIERS:
            raise serializers.ValidationError(
                {"identifiers": [f"at most {MAX_IDENTIFIERS} identifiers"]}
            )
        if len(attrs.get("decisions") or []) > MAX_DECISIONS:
            raise serializers.ValidationError({"decisions": [f"at most {MAX_DECISIONS}"]})
        attrs["identifiers"] = [(i["type"], i["value"]) for i in identifiers]
        return attrs


class ConsentEventOut(serializers.ModelSerializer):
    decision = serializers.CharField(help_text="granted, denied, withdrawn, objected, ...")
    method = serializers.CharField(help_text="ui, api, import, tcf_string, gpc_header, ...")
    scope = serializers.CharField(help_text="global or source")
    lawful_basis = serializers.CharField()

    class Meta:
        model = ConsentEvent
        fields = [
            "id",
            "purpose",
            "purpose_version",
            "source",
            "scope",
            "jurisdiction",
            "lawful_basis",
            "decision",
            "method",
            "captured_at",
            "received_at",
            "expires_at",
            "notice_version_id",
            "collection_point",
            "actor_type",
            "actor_id",
            "raw_signal",
            "decoder_version",
            "copied_from",
        ]


class ConsentStateOut(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    decision = serializers.CharField()
    lawful_basis = serializers.CharField()

    class Meta:
        model = ConsentState
        fields = [
            "purpose",
            "scope",
            "source",
            "decision",
            "lawful_basis",
            "jurisdiction",
            "event_id",
            "captured_at",
            "expires_at",
        ]

    def get_scope(self, obj) -> str:
        return "source" if obj.source else "global"


class EvaluationOut(serializers.Serializer):
    allowed = serializers.BooleanField()
    basis = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    event_ids = serializers.ListField(child=serializers.IntegerField())


class ValidationIssueOut(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()


class SignalResultOut(serializers.Serializer):
    type = serializers.CharField()
    valid = serializers.BooleanField()
    errors = ValidationIssueOut(many=True)


class GpcResultOut(serializers.Serializer):
    received = serializers.BooleanField()
    binding = serializers.BooleanField()
    recorded = serializers.IntegerField()


class ConsentRecordedOut(serializers.Serializer):
    subject_id = serializers.UUIDField()
    region = serializers.CharField()
    events = ConsentEventOut(many=True)
    signal = SignalResultOut(allow_null=True)
    gpc = GpcResultOut()


class SubjectConsentOut(serializers.Serializer):
    id = serializers.UUIDField()
    region = serializers.CharField()
    merged_from = serializers.UUIDField(allow_null=True)
    state = ConsentStateOut(many=True)
    evaluation = serializers.DictField(child=EvaluationOut())


class SubjectHistoryOut(SubjectConsentOut):
    history = ConsentEventOut(many=True)


class LookupIn(FieldsBuiltOnce, serializers.Serializer):
    type = serializers.ChoiceField(choices=IdentifierType.choices)
    value = serializers.CharField(max_length=320, trim_whitespace=False)

    def validate(self, attrs):
        return IdentifierIn().validate(attrs)


class ConsentModeIn(serializers.Serializer):
    jurisdiction = serializers.CharField(max_length=16, required=False)
    source = serializers.CharField(max_length=64, required=False)


class ConsentModeOut(serializers.Serializer):
    subject_id = serializers.UUIDField()
    consent_mode = serializers.DictField(child=serializers.ChoiceField(["granted", "denied"]))


class TcfDecodeIn(serializers.Serializer):
    tc_string = serializers.CharField(max_length=10_000, trim_whitespace=False)


class PublisherRestrictionOut(serializers.Serializer):
    purpose_id = serializers.IntegerField()
    restriction_type = serializers.IntegerField()
    vendor_ids = serializers.ListField(child=serializers.IntegerField())


class TcfDecodeOut(serializers.Serializer):
    version = serializers.IntegerField()
    created = serializers.DateTimeField()
    last_updated = serializers.DateTimeField()
    cmp_id = serializers.IntegerField()
    cmp_version = serializers.IntegerField()
    consent_screen = serializers.IntegerField()
    consent_language = serializers.CharField()
    vendor_list_version = serializers.IntegerField()
    tcf_policy_version = serializers.IntegerField()
    is_service_specific = serializers.BooleanField()
    use_non_standard_texts = serializers.BooleanField()
    special_feature_opt_ins = serializers.ListField(child=serializers.IntegerField())
    purposes_consent = serializers.ListField(child=serializers.IntegerField())
    purposes_li_transparency = serializers.ListField(child=serializers.IntegerField())
    purpose_one_treatment = serializers.BooleanField()
    publisher_cc = serializers.CharField()
    vendor_consents = serializers.ListField(child=serializers.IntegerField())
    vendor_legitimate_interests = serializers.ListField(child=serializers.IntegerField())
    publisher_restrictions = PublisherRestrictionOut(many=True)
    disclosed_vendors = serializers.ListField(child=serializers.IntegerField())
    allowed_vendors = serializers.ListField(child=serializers.IntegerField())
    valid = serializers.BooleanField()
    errors = ValidationIssueOut(many=True)


TCF_DECODE_FIELDS = [name for name in TcfDecodeOut().fields if name not in ("valid", "errors")]


#: built once: a ModelSerializer builds its fields on every instantiation (about 1 ms here),
#: and ``to_representation`` of a bound instance only reads them
_EVENT_OUT = ConsentEventOut()
_STATE_OUT = ConsentStateOut()


def events_data(events) -> list[dict]:
    """``ConsentEventOut(events, many=True).data``, from fields built once (hot path)."""
    return [_EVENT_OUT.to_representation(event) for event in events]


def states_data(states) -> list[dict]:
    """``ConsentStateOut(states, many=True).data``, from fields built once."""
    return [_STATE_OUT.to_representation(state) for state in states]
