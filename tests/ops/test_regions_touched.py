"""The cost of one API request: an EU consent write and an EU event batch touch the control
database and ``eu`` only. No connection to ``us`` is opened and no query runs there (issue 19).

Every connection is closed before the request and watched through ``connection_created``; a
wrapper on ``us`` records any statement with the stack that sent it.
"""

from __future__ import annotations

import contextlib
import traceback

import pytest
from django.db import connections
from django.db.backends.signals import connection_created

from compliance.models import SubjectDirectory
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.consent.conftest import api_client
from tests.consent.test_api import consent_body
from tests.consent.test_tcf import VALID
from tests.events.conftest import event, new_email, post
from tests.factories import SegmentFactory, StaffFactory, SubjectFactory
from tests.segments.helpers import ACTOR

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@contextlib.contextmanager
def regions_watched():
    """Close every connection, then record ``{"opened": [aliases], "us": [(sql, stack)]}``."""
    for connection in connections.all():
        connection.close()
    seen: dict[str, list] = {"opened": [], "us": []}

    def opened(sender, connection, **kwargs):
        seen["opened"].append(connection.alias)
        if connection.alias == "us":
            seen["us"].append(("<connect>", "".join(traceback.format_stack(limit=25))))

    def on_us(execute, sql, params, many, context):
        seen["us"].append((sql, "".join(traceback.format_stack(limit=25))))
        return execute(sql, params, many, context)

    connection_created.connect(opened)
    try:
        with connections["us"].execute_wrapper(on_us):
            yield seen
    finally:
        connection_created.disconnect(opened)


def assert_us_untouched(seen: dict) -> None:
    assert seen["us"] == [], "\n\n".join(f"{sql}\n{stack}" for sql, stack in seen["us"][:3])
    assert "us" not in seen["opened"]
    assert connections["us"].connection is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"signal": {"type": "tcf", "value": VALID}, "decisions": None, "jurisdiction": "DE"},
        {"gpc": True},
    ],
    ids=["decisions", "tcf", "gpc"],
)
def test_eu_consent_write_for_a_new_subject_never_touches_us(body):
    client = api_client("consent:write")
    headers = {"HTTP_SEC_GPC": "1"} if body.pop("gpc", False) else {}
    with regions_watched() as seen:
        response = client.post("/api/v1/consents/", consent_body(**body), format="json", **headers)
    assert response.status_code == 201, response.json()
    assert response.json()["region"] == "eu"
    assert_us_untouched(seen)
    assert set(seen["opened"]) == {"default", "eu"}


def test_eu_consent_write_for_an_existing_subject_never_touches_us():
    """A known subject in segments: a withdrawal closes its stays (hooks, audit, feed)."""
    officer = StaffFactory(username="officer-touched")
    subject = SubjectFactory(email="claire@example.fr", jurisdiction="FR", consented=True)
    segment = SegmentFactory(user=officer)
    memberships_apply(segment=segment, enters=[subject.pk], exits=[], actor=ACTOR)
    client = api_client("consent:write")
    decisions = [
        {"purpose": purpose, "decision": "withdrawn"} for purpose in segment.required_purposes
    ] + [{"purpose": "measurement", "decision": "granted"}]
    with regions_watched() as seen:
        response = client.post(
            "/api/v1/consents/",
            consent_body(decisions=decisions, signal={"type": "tcf", "value": VALID}),
            format="json",
            HTTP_SEC_GPC="1",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["subject_id"] == str(subject.pk)
    assert_us_untouched(seen)
    stays = SegmentMembership.objects.using("eu").filter(subject_id=subject.pk)
    assert stays.filter(exited_reason="consent_withdrawn").count() == 1  # the hook ran, in eu


def test_eu_event_batch_of_ten_never_touches_us():
    """Known and consented people, one stitched anonymous id, a new person with a TCF signal
    (created to record it), one unknown EU person (refused, nothing created)."""
    known = [new_email("eu") for _ in range(7)]
    for email in known:
        SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    batch = [event(email, jurisdiction="FR") for email in known]
    batch[0]["identifiers"].append({"type": "anonymous_id", "value": "anon-touched-1"})
    batch.append(event(known[1], jurisdiction="FR", name="signup"))
    signalled = new_email("eu")
    batch.append(event(signalled, jurisdiction="DE", consent_signal={"tc_string": VALID}))
    batch.append(event(new_email("eu"), jurisdiction="DE"))  # nobody: refused, no record
    client = api_client("events:write")
    with regions_watched() as seen:
        response = post(client, batch)
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["status"] for r in results[:8]] == ["accepted"] * 8
    assert results[9]["status"] == "rejected"
    assert_us_untouched(seen)
    assert set(SubjectDirectory.objects.values_list("region", flat=True)) == {"eu"}
    assert SubjectDirectory.objects.filter(identifier_type="anonymous_id").exists()
    assert SubjectDirectory.objects.count() == 7 + 1 + 1  # the stitched id, the signalled one
