"""``POST /api/v1/events/``: consent-gated event ingest (scope ``events:write``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from compliance.api import examples
from compliance.api.views import ApiView
from compliance.audit.services.append import Actor
from compliance.events.parsing import event_batch_parse
from compliance.events.serializers import (
    EventBatchInputSerializer,
    EventBatchResultSerializer,
    batch_result_data,
)
from compliance.events.services.ingest import events_ingest
from compliance.ops.metrics import event_rejections_count

#: 1,000 events with 16 KiB of properties each, plus the envelope
MAX_BODY_BYTES = 20 * 1024 * 1024


class EventBatchView(ApiView):
    required_scopes = "events:write"
    max_body_bytes = MAX_BODY_BYTES

    @extend_schema(
        operation_id="events_ingest",
        summary="Send a batch of up to 1,000 events; each is stored only if consent allows",
        request=EventBatchInputSerializer,
        examples=[examples.EVENTS],
        responses={200: EventBatchResultSerializer},
        tags=["events"],
    )
    def post(self, request):
        events = event_batch_parse(data=request.data)
        result = events_ingest(events=events, actor=Actor.client(request.auth))
        event_rejections_count(reasons=result.rejections())  # /metrics
        return Response(batch_result_data(result=result, events=events))
