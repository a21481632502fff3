"""Pull feed: ``GET /api/v1/changes/?region=eu&after=CURSOR``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from compliance.api.views import ApiView
from compliance.feed.api.serializers import ChangesInput, ChangesPageOutput
from compliance.feed.selectors.changes import (
    change_payload,
    changes_after,
    cursor_decode,
    cursor_encode,
)


class ChangesView(ApiView):
    required_scopes = "changes:read"

    @extend_schema(
        summary="Read the change feed of a region (membership enters, exits, retracts; consent)",
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, required=True),
            OpenApiParameter("after", OpenApiTypes.STR, description="opaque cursor"),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1..1000, default 100"),
            OpenApiParameter(
                "type", OpenApiTypes.STR, many=True, description="enter, exit, retract, consent"
            ),
            OpenApiParameter(
                "arm",
                OpenApiTypes.STR,
                enum=["treatment", "control", "all"],
                description="membership changes of this holdout arm (default treatment: "
                "control members are never activated); consent changes always come",
            ),
        ],
        responses=ChangesPageOutput,
    )
    def get(self, request):
        params = ChangesInput(
            data={
                **{k: v for k, v in request.query_params.items() if k != "type"},
                **(
                    {"type": request.query_params.getlist("type")}
                    if "type" in request.query_params
                    else {}
                ),
            }
        )
        params.is_valid(raise_exception=True)
        data = params.validated_data
        region = data["region"]
        after = 0
        if data["after"]:
            after = cursor_decode(cursor=data["after"], region=region)
        limit = data["limit"]
        rows = changes_after(
            region=region,
            after=after,
            limit=limit + 1,
            kinds=sorted(data["type"]) if data.get("type") else None,
            arm=data["arm"],
        )
        page = rows[:limit]
        last = page[-1].pk if page else after
        next_cursor = cursor_encode(region=region, change_pk=last)
        params = request.query_params.copy()
        params["after"] = next_cursor
        return Response(
            {
                "changes": [change_payload(change=c, region=region) for c in page],
                "next_cursor": next_cursor,
                "next": request.build_absolute_uri(f"{request.path}?{params.urlencode()}"),
                "has_more": len(rows) > limit,
            }
        )
