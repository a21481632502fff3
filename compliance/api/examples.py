"""Valid request bodies shown in the schema (Swagger UI "Try it out", Redoc) and used by the
property-based test's explicit phase, so success answers are checked too."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample


def body_example(name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


CONSENT = body_example(
    "grant measurement on the web",
    {
        "identifier": {"type": "email", "value": "claire@example.fr"},
        "jurisdiction": "FR",
        "source": "web",
        "decisions": [{"purpose": "measurement", "decision": "granted"}],
    },
)
LOOKUP = body_example("by email", {"type": "email", "value": "claire@example.fr"})
EVENTS = body_example(
    "one page view",
    {
        "events": [
            {
                "source": "web",
                "identifiers": [{"type": "email", "value": "claire@example.fr"}],
                "event": "page_view",
                "properties": {"path": "/pricing"},
                "time": "2026-01-15T10:00:00Z",
                "purpose": "measurement",
                "jurisdiction": "FR",
            }
        ]
    },
)
REQUEST = body_example(
    "an access request",
    {
        "type": "access",
        "regulation": "gdpr",
        "identifiers": [{"type": "email", "value": "claire@example.fr"}],
        "verification_method": "email_confirmation",
        "jurisdiction": "FR",
        "external_reference": "TICKET-1042",
    },
)
REASON = body_example("a reason", {"reason": "identity could not be verified"})
SEGMENT = body_example(
    "an AI-suggested segment",
    {
        "key": "likely-churn",
        "name": "Likely churn",
        "layers": ["behavioral", "engagement"],
        "origin": "ai_suggested",
        "motion": "campaign",
        "measurement_metric": "retention after 30 days",
        "control_group_share": "0.1",
    },
)
TCF = body_example(
    "a TCF v2.2 string", {"tc_string": "COvzTO5OvzTO5EsAHBDEB4EoAPIAAEIAAAYgADEgAFBAAAAA.IAEkiAAA"}
)
