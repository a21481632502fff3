"""Control stays never reach activation subscribers (issue #17): membership changes carry the
stay's arm; a subscription receives the treatment arm unless it opts in to ``control`` (or
``all``); consent changes go to every subscription."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from django.utils import timezone

from compliance.feed.models import Change, SubscriptionArm
from compliance.feed.selectors.changes import changes_after
from compliance.feed.services.outbox import ChangeInput, changes_record
from compliance.feed.services.subscriptions import SubscriptionInputError
from segments.holdout import CONTROL, TREATMENT, holdout_arm
from segments.services.memberships import memberships_apply
from tests.conftest import wait_for
from tests.factories import ACTOR, SegmentFactory, SubjectFactory
from tests.feed.conftest import subscribe
from tests.feed.test_api import client


def _mixed_feed(person) -> None:
    """enter (treatment), enter (control), an old enter without arm, a consent change."""
    now = timezone.now()
    with transaction.atomic(using="eu"):
        changes_record(
            using="eu",
            changes=[
                ChangeInput("enter", person.pk, now, segment_key="t", ref_id=1, arm=TREATMENT),
                ChangeInput("enter", person.pk, now, segment_key="c", ref_id=2, arm=CONTROL),
                ChangeInput("enter", person.pk, now, segment_key="old", ref_id=3),
                ChangeInput("consent", person.pk, now, purpose="measurement", ref_id=4),
            ],
        )


@pytest.mark.django_db(databases="__all__")
def test_the_selector_keeps_the_arm_asked_for():
    _mixed_feed(SubjectFactory())

    def seen(**kw):
        return [(c.segment_key or c.purpose) for c in changes_after(region="eu", **kw)]

    assert seen() == ["t", "old", "measurement"]  # default: treatment (and pre-arm rows)
    assert seen(arm=SubscriptionArm.TREATMENT) == ["t", "old", "measurement"]
    assert seen(arm=SubscriptionArm.CONTROL) == ["c", "measurement"]
    assert seen(arm=SubscriptionArm.ALL) == ["t", "c", "old", "measurement"]


@pytest.mark.django_db(databases="__all__")
def test_pull_api_filters_by_arm_and_names_a_bad_one():
    _mixed_feed(SubjectFactory())
    api = client()
    body = api.get("/api/v1/changes/", {"region": "eu"}).json()
    assert [(c["segment"], c["arm"]) for c in body["changes"]] == [
        ("t", TREATMENT),
        ("old", TREATMENT),
        (None, None),
    ]
    control = api.get("/api/v1/changes/", {"region": "eu", "arm": "control"}).json()
    assert [(c["segment"], c["arm"]) for c in control["changes"]] == [("c", CONTROL), (None, None)]
    bad = api.get("/api/v1/changes/", {"region": "eu", "arm": "holdout"})
    assert bad.status_code == 400 and "arm" in bad.json()["error"]["fields"]


@pytest.mark.django_db(databases="__all__")
def test_a_subscription_validates_its_arm(receiver):
    sub, _ = subscribe(receiver, arm="control")
    assert sub.arm == SubscriptionArm.CONTROL
    default, _ = subscribe(receiver, name="default-hook")
    assert default.arm == SubscriptionArm.TREATMENT
    with pytest.raises(SubscriptionInputError) as caught:
        subscribe(receiver, name="bad-hook", arm="holdout")
    assert caught.value.field == "arm"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_control_stays_reach_only_the_subscription_that_opts_in(
    celery_worker_factory, receiver, officer
):
    """A real worker delivers to a real receiver: the default subscription gets every
    treatment enter and exit and no control one; an ``arm: control`` one the reverse."""
    celery_worker_factory(queues=["compliance.eu"])
    subscribe(receiver, name="activation", types=["enter", "exit", "retract"])
    subscribe(receiver, name="measurement", types=["enter", "exit", "retract"], arm="control")
    seg = SegmentFactory(user=officer, control_group_share="0.5", holdout=True)
    people = [SubjectFactory(consented=True) for _ in range(12)]
    arms = {
        str(p.pk): holdout_arm(salt=seg.holdout_salt, subject_id=p.pk, share=0.5) for p in people
    }
    assert set(arms.values()) == {CONTROL, TREATMENT}, "draw more people"
    ids = [p.pk for p in people]
    memberships_apply(segment=seg, enters=ids, exits=[], actor=ACTOR)
    memberships_apply(segment=seg, enters=[], exits=ids[:6], actor=ACTOR, reason="criteria")
    written = Change.objects.using("eu").filter(segment_key=seg.key)
    assert written.count() == 18
    expected = {
        name: {
            (c.kind, str(c.subject_id), c.arm)
            for c in written
            if (c.arm == CONTROL) == (name == "measurement")
        }
        for name in ("activation", "measurement")
    }
    assert expected["activation"] and expected["measurement"]

    def received() -> dict[str, set]:
        got: dict[str, set] = {"activation": set(), "measurement": set()}
        for delivery in receiver.accepted():
            body = delivery.payload
            for c in body["changes"]:
                got[body["subscription"]].add((c["type"], c["subject_id"], c["arm"]))
        return got

    wait_for(
        lambda: all(len(received()[n]) >= len(expected[n]) for n in expected),
        timeout=30,
        what="both subscriptions served",
    )
    time.sleep(0.5)  # anything sent to the wrong subscription would show up now
    got = received()
    assert got == expected
    assert all(arms[sid] == TREATMENT for _, sid, _ in got["activation"])
    assert all(arms[sid] == CONTROL for _, sid, _ in got["measurement"])
