"""The endpoints of ``python -m bench api``: path, target, request bodies (those of
``compliance/api/examples.py``, EU subjects) and the check of each answer."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.api_urls import BASELINE_PATH


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    target: float | None
    #: (index, stride) -> (body, extra headers); threads use indexes congruent modulo stride
    request: Callable[[int, int], tuple[dict, dict]]
    expect: int = 201
    check: Callable[[dict], str | None] = lambda body: None


def endpoints_build(emails: list[str]) -> list[Endpoint]:
    n = len(emails)
    new_subjects = itertools.count()
    run = uuid.uuid4().hex[:8]

    def consent(value: str) -> dict:
        return {
            "identifier": {"type": "email", "value": value},
            "jurisdiction": "FR",
            "source": "web",
            "decisions": [{"purpose": "measurement", "decision": "granted"}],
        }

    def events(i: int, stride: int) -> tuple[dict, dict]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {
            "events": [
                {
                    "source": "web",
                    "identifiers": [{"type": "email", "value": emails[(i + stride * k) % n]}],
                    "event": "page_view",
                    "properties": {"path": f"/products/{k}", "referrer": "search"},
                    "time": now,
                    "purpose": "measurement",
                    "jurisdiction": "FR",
                    "id": f"evt-{uuid.uuid4().hex}",
                }
                for k in range(10)
            ]
        }, {}

    def access(i: int, stride: int) -> tuple[dict, dict]:
        body = {
            "type": "access",
            "regulation": "gdpr",
            "identifiers": [{"type": "email", "value": emails[i % n]}],
            "verification_method": "email_confirmation",
            "jurisdiction": "FR",
            "external_reference": f"BENCH-{i}",
        }
        return body, {"Idempotency-Key": str(uuid.uuid4())}

    def in_eu(body: dict) -> str | None:
        return None if body.get("region") == "eu" else f"region {body.get('region')!r}, not 'eu'"

    def all_accepted(body: dict) -> str | None:
        return None if body.get("accepted") == 10 else f"{body.get('accepted')} of 10 accepted"

    return [
        Endpoint(
            "baseline", "baseline (1 insert)", BASELINE_PATH, None,
            lambda i, stride: ({"value": f"row-{i}"}, {}),
        ),
        Endpoint(
            "consent", "consents (existing subject)", "/api/v1/consents/", 2.0,
            lambda i, stride: (consent(emails[i % n]), {}), check=in_eu,
        ),
        Endpoint(
            "consent_new", "consents (new subject)", "/api/v1/consents/", 4.0,
            lambda i, stride: (consent(f"new-{run}-{next(new_subjects)}@example.fr"), {}),
            check=in_eu,
        ),
        Endpoint("events", "events (10)", "/api/v1/events/", 2.0, events, 200, all_accepted),
        Endpoint(
            "lookup", "lookup", "/api/v1/subjects/lookup", 1.5,
            lambda i, stride: ({"type": "email", "value": emails[i % n]}, {}), 200, in_eu,
        ),
        Endpoint("access", "access request (DSAR)", "/api/v1/requests/", 3.0, access, check=in_eu),
    ]  # fmt: skip
