"""Segments API: thin views over the governance and membership services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from compliance.api import examples
from compliance.api.inputs import datetime_param, uuid_param
from compliance.api.pagination import (
    CURSOR_PARAMETERS,
    Ordering,
    cursor_decode,
    keyset_fetch,
    limit_param,
    page_body,
    paginated,
)
from compliance.api.permissions import ActsAsGroupMember, HasRequiredScope
from compliance.api.views import ApiView
from compliance.errors import InputError, NotFoundError
from compliance.identifiers import IdentifierError
from compliance.regions import regions
from compliance.roles import PRIVACY_OFFICER
from compliance.services.subjects import SubjectSuppressedError, subject_resolve
from segments.api.serializers import (
    HistoryOutput,
    MemberOutput,
    MembershipsInput,
    MembershipsOutput,
    SegmentChangeInput,
    SegmentInput,
    SegmentOutput,
)
from segments.models import Segment, SegmentMembership, Status
from segments.selectors.memberships import (
    membership_at,
    membership_history,
    segment_members,
    subject_region,
)
from segments.services import definitions, reviews
from segments.services.definitions import caller_actor
from segments.services.memberships import SubjectRef, memberships_apply


def segment_or_404(key: str) -> Segment:
    segment = Segment.objects.select_related("owner", "approved_by").filter(key=key).first()
    if segment is None:
        raise NotFoundError(f"no segment {key!r}")
    return segment


SEGMENT_ORDERING = Ordering(fields=("key",))
MEMBER_ORDERING = Ordering(fields=("id",))
MAX_MEMBERS_PAGE = 1000


class SegmentListCreateView(ApiView):
    required_scopes = {"GET": "segments:read", "POST": "segments:write"}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
            *CURSOR_PARAMETERS,
        ],
        responses=paginated(SegmentOutput, name="SegmentPage", count=True),
        operation_id="segments_list",
        summary="List segments by key (cursor pages, count, filter by status)",
    )
    def get(self, request):
        segments = Segment.objects.select_related("owner", "approved_by")
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in Status.values:
                raise InputError(
                    f"status must be one of {', '.join(Status.values)}",
                    fields={"status": ["unknown status"]},
                )
            segments = segments.filter(status=status_filter)
        cursor = cursor_decode(
            raw=request.query_params.get("cursor"), model=Segment, ordering=SEGMENT_ORDERING
        )
        rows, more = keyset_fetch(
            querysets=[segments],
            ordering=SEGMENT_ORDERING,
            cursor=cursor,
            limit=limit_param(request),
        )
        body = page_body(
            request=request,
            rows=rows,
            more=more,
            cursor=cursor,
            ordering=SEGMENT_ORDERING,
            render=lambda found: SegmentOutput(found, many=True).data,
            count=segments.count(),
        )
        return Response(body)

    @extend_schema(
        request=SegmentInput,
        examples=[examples.SEGMENT],
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
    required_scopes = {"GET": "segments:read", "PATCH": "segments:write"}

    @extend_schema(responses=SegmentOutput, summary="One segment")
    def get(self, request, key: str):
        return Response(SegmentOutput(segment_or_404(key)).data)

    @extend_schema(
        request=SegmentChangeInput,
        responses=SegmentOutput,
        summary="Edit a definition (the fields sent; tools: drafts only; the control group "
        "share is fixed once activated)",
    )
    def patch(self, request, key: str):
        segment = segment_or_404(key)
        data = SegmentChangeInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        segment = definitions.segment_update(
            segment=segment,
            changes=dict(data.validated_data),
            user=request.user,
            client=request.auth,
        )
        return Response(SegmentOutput(segment).data)


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
        "review": reviews.segment_review,
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
                    raise InputError(
                        f"{label} repeats {items[subject_id]}",
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


def _region_param(request) -> str:
    region = request.query_params.get("region")
    if region not in regions():
        raise InputError(
            f"region must be one of {', '.join(regions())}",
            fields={"region": ["unknown or missing region"]},
        )
    return region


class SegmentMembersView(ApiView):
    required_scopes = "segments:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, required=True),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="from `next`/`previous`"),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1..1000, default 100"),
        ],
        responses=paginated(MemberOutput, name="MemberPage"),
        operation_id="segments_members_list",
        summary="Active members of a segment in one region, in entry order (cursor pages)",
    )
    def get(self, request, key: str):
        segment = segment_or_404(key)
        members = segment_members(region=_region_param(request), segment_key=segment.key)
        cursor = cursor_decode(
            raw=request.query_params.get("cursor"),
            model=SegmentMembership,
            ordering=MEMBER_ORDERING,
        )
        rows, more = keyset_fetch(
            querysets=[members],
            ordering=MEMBER_ORDERING,
            cursor=cursor,
            limit=limit_param(request, maximum=MAX_MEMBERS_PAGE),
        )
        body = page_body(
            request=request,
            rows=rows,
            more=more,
            cursor=cursor,
            ordering=MEMBER_ORDERING,
            render=lambda found: MemberOutput(found, many=True).data,
        )
        return Response(body)


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
        subject_id = uuid_param(value=subject_id, field="subject_id")
        region = subject_region(subject_id=subject_id)
        if region is None:
            raise NotFoundError("unknown subject")
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
