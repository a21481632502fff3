"""``POST /api/v1/events/``: consent-gated event ingest (scope ``events:write``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api.errors import ApiError
from compliance.audit.services.append import Actor
from compliance.events.parsing import EventBatchInvalid, event_batch_parse
from compliance.events.serializers import (
    EventBatchInputSerializer,
    EventBatchResultSerializer,
    batch_result_data,
)
from compliance.events.services.ingest import events_ingest

#: 1,000 events with 16 KiB of properties each, plus the envelope
MAX_BODY_BYTES = 20 * 1024 * 1024


class EventBatchView(APIView):
    required_scopes = "events:write"

    @extend_schema(
        operation_id="events_ingest",
        summary="Send a batch of up to 1,000 events; each is stored only if consent allows",
        request=EventBatchInputSerializer,
        responses={200: EventBatchResultSerializer},
        tags=["events"],
    )
    def post(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(
                f"request body larger than {MAX_BODY_BYTES} bytes; send smaller batches",
                code="too_large",
                fields={"events": ["batch too large"]},
                status_code=413,
            )
        try:
            events = event_batch_parse(data=request.data)
        except EventBatchInvalid as exc:
            raise ApiError(str(exc), code="invalid", fields=exc.fields)
        result = events_ingest(events=events, actor=Actor.client(request.auth))
        return Response(batch_result_data(result=result, events=events))
