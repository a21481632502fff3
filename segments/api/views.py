"""Segments API: thin views over the governance and membership services."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from compliance.api.errors import ApiError
from compliance.api.inputs import datetime_param
from compliance.api.permissions import ActsAsGroupMember, HasRequiredScope
from compliance.api.views import ApiListView, ApiView
from compliance.identifiers import IdentifierError
from compliance.regions import regions
from compliance.roles import PRIVACY_OFFICER
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from segments.api.serializers import (
    HistoryOutput,
    MemberOutput,
    MembershipsInput,
    MembershipsOutput,
    SegmentInput,
    SegmentOutput,
)
from segments.models import Segment
from segments.selectors.memberships import (
    membership_at,
    membership_history,
    segment_members,
    subject_region,
)
from segments.services import definitions
from segments.services.definitions import caller_actor
from segments.services.memberships import SubjectRef, memberships_apply

STATUS_OF_CODE = {
    "invalid": 400,
    "not_editable": 400,
    "forbidden": 403,
    "exists": 409,
    "illegal_transition": 409,
    "own_suggestion": 403,
    "incomplete": 409,
    "retired": 409,
}


def segment_or_404(key: str) -> Segment:
    segment = Segment.objects.select_related("owner", "approved_by").filter(key=key).first()
    if segment is None:
        raise ApiError(f"no segment {key!r}", code="not_found", status_code=404)
    return segment


class SegmentListCreateView(ApiView):
    required_scopes = {"GET": "segments:read", "POST": "segments:write"}

    @extend_schema(responses=SegmentOutput(many=True), summary="List segments")
    def get(self, request):
        segments = Segment.objects.select_related("owner", "approved_by").order_by("key")
        status_filter = request.query_params.get("status")
        if status_filter:
            segments = segments.filter(status=status_filter)
        return Response(SegmentOutput(segments, many=True).data)

    @extend_schema(
        request=SegmentInput,
        responses={201: SegmentOutput},
        summary="Propose a segment (created as draft; tools use origin ai_suggested)",
    )
    def post(self, request):
        data = SegmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        segment = definitions.segment_create(**values, user=request.user, client=request.auth)
        return Response(SegmentOutput(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(ApiView):
    required_scopes = "segments:read"

    @extend_schema(responses=SegmentOutput, summary="One segment")
    def get(self, request, key: str):
        return Response(SegmentOutput(segment_or_404(key)).data)


class SegmentTransitionView(ApiView):
    """approve / activate / pause / retire / review: a privacy officer's token only."""

    required_scopes = "segments:review"
    permission_classes = [HasRequiredScope, ActsAsGroupMember]
    required_group = PRIVACY_OFFICER
    transition: str = ""

    @property
    def schema_summary(self) -> str:
        return f"{self.transition.capitalize()} a segment (privacy officer token)"
    SERVICES = {
        "approve": definitions.segment_approve,
        "activate": definitions.segment_activate,
        "pause": definitions.segment_pause,
        "retire": definitions.segment_retire,
        "review": definitions.segment_review,
    }

    @extend_schema(request=None, responses=SegmentOutput)
    def post(self, request, key: str):
        segment = segment_or_404(key)
        segment = self.SERVICES[self.transition](
            segment=segment, user=request.user, client=request.auth
        )
        return Response(SegmentOutput(segment).data)


class SegmentMembershipsView(ApiView):
    required_scopes = "segments:write"

    @extend_schema(
        request=MembershipsInput,
        responses=MembershipsOutput,
        summary="Enter and exit subjects (by subject_id or identifier; up to 10,000 per call)",
    )
    def post(self, request, key: str):
        segment = segment_or_404(key)
        data = MembershipsInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        actor = caller_actor(user=request.user, client=request.auth)
        refused: list[dict] = []
        items: dict = {}
        lists = {}
        for side in ("enters", "exits"):
            lists[side] = []
            for index, item in enumerate(values[side]):
                label = f"{side}[{index}]"
                ref, why = self._resolve(item, actor=actor, jurisdiction=values["jurisdiction"])
                if ref is None:
                    refused.append({"item": label, "subject_id": None, "reason": why})
                    continue
                subject_id = ref.subject_id if isinstance(ref, SubjectRef) else ref
                if subject_id in items:
                    raise ApiError(
                        f"{label} repeats {items[subject_id]}",
                        code="invalid",
                        fields={label: ["this subject appears twice"]},
                    )
                items[subject_id] = label
                lists[side].append(ref)
        result = memberships_apply(
            segment=segment,
            enters=lists["enters"],
            exits=lists["exits"],
            actor=actor,
            reason=values["reason"],
        )
        refused.extend(
            {"item": items[sid], "subject_id": sid, "reason": why}
            for sid, why in result.refused.items()
        )
        body = {
            "entered": result.entered,
            "exited": result.exited,
            "unchanged": [{"subject_id": s, "reason": r} for s, r in result.unchanged.items()],
            "refused": sorted(refused, key=lambda r: r["item"]),
        }
        return Response(MembershipsOutput(body).data)

    @staticmethod
    def _resolve(item: dict, *, actor, jurisdiction):
        if "subject_id" in item:
            return item["subject_id"], ""
        try:
            subject = subject_resolve(
                identifier_type=item["identifier_type"],
                value=item["value"],
                jurisdiction=jurisdiction,
                actor=actor,
                create=False,
            )
        except IdentifierError:
            return None, "invalid_identifier"
        except SubjectSuppressedError:
            return None, "erased_subject"
        if subject is None:
            return None, "unknown_subject"
        return SubjectRef(subject_id=subject.pk, region=subject.region), ""


class MembersPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _region_param(request) -> str:
    region = request.query_params.get("region")
    if region not in regions():
        raise ApiError(
            f"region must be one of {', '.join(regions())}",
            code="invalid",
            fields={"region": ["unknown or missing region"]},
        )
    return region


class SegmentMembersView(ApiListView):
    required_scopes = "segments:read"
    serializer_class = MemberOutput
    pagination_class = MembersPagination

    def get_queryset(self):
        segment = segment_or_404(self.kwargs["key"])
        return segment_members(region=_region_param(self.request), segment_key=segment.key)

    @extend_schema(
        parameters=[OpenApiParameter("region", OpenApiTypes.STR, required=True)],
        summary="Active members of a segment in one region (paginated)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MemberHistoryView(ApiView):
    required_scopes = "segments:read"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "at", OpenApiTypes.DATETIME, description="answer 'was a member at this time'"
            )
        ],
        responses=HistoryOutput,
        summary="A subject's stays in a segment",
    )
    def get(self, request, key: str, subject_id: str):
        segment = segment_or_404(key)
        try:
            subject_id = UUID(subject_id)
        except ValueError:
            raise ApiError(
                "subject_id must be a UUID", code="invalid", fields={"subject_id": ["not a UUID"]}
            )
        region = subject_region(subject_id=subject_id)
        if region is None:
            raise ApiError("unknown subject", code="not_found", status_code=404)
        at = datetime_param(value=request.query_params.get("at"), field="at")
        stays = membership_history(region=region, subject_id=subject_id, segment_key=segment.key)
        member_at = None
        if at is not None:
            member_at = (
                membership_at(region=region, subject_id=subject_id, segment_key=segment.key, at=at)
                is not None
            )
        body = {
            "subject_id": subject_id,
            "segment_key": segment.key,
            "region": region,
            "at": at,
            "member_at": member_at,
            "stays": list(stays),
        }
        return Response(HistoryOutput(body).data)
