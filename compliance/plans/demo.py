"""Starter tracking plans of the demo sources (``web``, ``ios_app``, ``crm``), in ``flag``
mode, published once by ``manage.py load_demo`` (a source that has a plan is left as it is)."""

from __future__ import annotations

from compliance.consent.models import EventSource
from compliance.plans.documents import plan_document_parse
from compliance.plans.models import TrackingPlan
from compliance.plans.services.plans import tracking_plan_publish


def _event(name: str, description: str, owner: str, properties: dict, required=()) -> dict:
    return {
        "name": name,
        "description": description,
        "owner": owner,
        "schema": {"type": "object", "properties": properties, "required": list(required)},
    }


_TEXT = {"type": "string", "maxLength": 500}
_MONEY = {
    "amount": {"type": "number", "minimum": 0},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
}
STARTER_PLANS = {
    "web": {
        "events": [
            _event("page_view", "a page was shown", "web team",
                   {"path": _TEXT, "referrer": _TEXT, "title": _TEXT}, ["path"]),
            _event("signup", "an account was created", "growth",
                   {"plan": {"enum": ["free", "pro", "team"]}}, ["plan"]),
            _event("newsletter_subscribed", "subscribed to a newsletter", "marketing",
                   {"list": _TEXT}, ["list"]),
        ],
        "identifier_types": ["email", "anonymous_id", "user_id"],
    },
    "ios_app": {
        "events": [
            _event("app_open", "the app came to the foreground", "mobile team", {}),
            _event("screen_view", "a screen was shown", "mobile team",
                   {"screen": _TEXT}, ["screen"]),
            _event("purchase", "an in-app purchase", "mobile team", dict(_MONEY),
                   ["amount", "currency"]),
        ],
        "identifier_types": ["device_id", "user_id", "email"],
    },
    "crm": {
        "events": [
            _event("lead_created", "a lead was created", "sales ops",
                   {"channel": _TEXT}),
            _event("meeting_booked", "a sales meeting was booked", "sales ops", {}),
            _event("deal_won", "a deal was won", "sales ops", dict(_MONEY),
                   ["amount", "currency"]),
        ],
        "identifier_types": ["crm_id", "email"],
    },
}  # fmt: skip


def load(*, actor, stdout) -> None:
    published = []
    for key, plan in STARTER_PLANS.items():
        source = EventSource.objects.filter(key=key).first()
        if source is None or TrackingPlan.objects.filter(source=source).exists():
            continue
        document = plan_document_parse(data={"mode": "flag", **plan})
        tracking_plan_publish(source=source, document=document, actor=actor)
        published.append(key)
    stdout.write(
        "demo tracking plans: "
        + (f"starter plans published for {', '.join(published)}" if published else "unchanged")
    )
