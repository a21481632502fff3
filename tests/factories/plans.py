"""Tracking plan versions, published through ``tracking_plan_publish`` (audited)."""

from __future__ import annotations

from compliance.consent.models import EventSource
from compliance.plans.documents import plan_document_parse
from compliance.plans.models import TrackingPlan
from compliance.plans.services.plans import tracking_plan_publish
from tests.factories.base import ACTOR, ServiceFactory

#: the web source's events in the tests: page_view (path required, string) and signup
WEB_EVENTS = [
    {
        "name": "page_view",
        "description": "a page was shown",
        "owner": "web team",
        "schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "referrer": {"type": "string"}},
            "required": ["path"],
        },
    },
    {
        "name": "signup",
        "description": "an account was created",
        "owner": "growth",
        "schema": {
            "type": "object",
            "properties": {
                "plan": {"enum": ["free", "pro", "team"]},
                "seats": {"type": "integer", "minimum": 1},
            },
            "required": ["plan"],
        },
    },
]


class TrackingPlanFactory(ServiceFactory):
    """``TrackingPlanFactory(source="web", mode="block", events=[...], identifier_types=[])``:
    the next version of the source's plan (default: ``WEB_EVENTS`` in ``flag`` mode)."""

    class Meta:
        model = TrackingPlan

    source = "web"
    mode = "flag"
    events = WEB_EVENTS
    identifier_types = ()
    actor = ACTOR

    @classmethod
    def _create(cls, model_class, *, source, mode, events, identifier_types, actor):
        document = plan_document_parse(
            data={"mode": mode, "events": list(events), "identifier_types": list(identifier_types)}
        )
        return tracking_plan_publish(
            source=EventSource.objects.get(key=source), document=document, actor=actor
        )
