"""Synthetic stays and conversion events with a known effect, for the lift tests.

Everything the report should say is computed here from the raw lists (``expected``), so the
tests compare the toolkit's aggregates with an independent computation.
"""

from __future__ import annotations

import json
import random
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from compliance import crypto
from compliance.events.models import Event
from compliance.events.services.ingest import properties_aad
from compliance.models import Subject, SubjectKey
from segments.holdout import CONTROL, holdout_arm
from segments.models import Segment, SegmentMembership
from tests.guards import owner_bypass


@dataclass
class Stay:
    subject_id: uuid.UUID
    arm: str
    entered_at: datetime
    #: (days after entry, value or None, purpose) of each conversion-named event
    events: list[tuple[float, float | None, str]] = field(default_factory=list)


def build(
    *,
    region: str,
    segment,
    n: int,
    now: datetime,
    rate_t: float,
    rate_c: float,
    seed: int = 1,
    arm_of=None,
) -> list[Stay]:
    """``n`` stays entered over the last 200 days; a treatment stay converts with
    ``rate_t``, a control one with ``rate_c``, at a random day in 0..120, with a value, plus
    noise: conversions before entry, events for another purpose, valueless ones."""
    rng = random.Random(seed)
    stays = []
    for _ in range(n):
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)  # deterministic: no flaky split
        arm = (
            arm_of(sid)
            if arm_of
            else holdout_arm(
                salt=segment.holdout_salt, subject_id=sid, share=segment.control_group_share
            )
        )
        age = rng.uniform(1, 200)
        stay = Stay(sid, arm, now - timedelta(days=age))
        rate = rate_c if arm == CONTROL else rate_t
        if rng.random() < rate:
            value = round(rng.lognormvariate(8, 0.5), 2) if rng.random() < 0.9 else None
            stay.events.append((rng.uniform(0.01, min(120, age)), value, "measurement"))
            if rng.random() < 0.3:  # a later second conversion: only the first counts
                stay.events.append((stay.events[0][0] * 1.01, 1.0, "measurement"))
        if rng.random() < 0.1:
            stay.events.append((-rng.uniform(1, 30), 5.0, "measurement"))  # before entry
        if rng.random() < 0.1:
            stay.events.append((rng.uniform(0, min(50, age)), 7.0, "audience_segmentation"))
        stays.append(stay)
    _write(region=region, segment=segment, stays=stays, now=now)
    return stays


def _write(*, region: str, segment, stays: list[Stay], now: datetime) -> None:
    keys = {s.subject_id: crypto.new_data_key() for s in stays}
    Subject.objects.using(region).bulk_create(
        [Subject(id=s.subject_id, region=region) for s in stays], batch_size=2000
    )
    SubjectKey.objects.using(region).bulk_create(
        [
            SubjectKey(
                subject_id=s.subject_id,
                wrapped_key=crypto.wrap_data_key(
                    region=region, subject_id=str(s.subject_id), data_key=keys[s.subject_id]
                ),
            )
            for s in stays
        ],
        batch_size=2000,
    )
    with owner_bypass(region):
        SegmentMembership.objects.using(region).bulk_create(
            [
                SegmentMembership(
                    subject_id=s.subject_id,
                    segment_key=segment.key,
                    entered_at=s.entered_at,
                    entered_reason="criteria",
                    arm=s.arm,
                )
                for s in stays
            ],
            batch_size=2000,
        )
    events = []
    for s in stays:
        for days, value, purpose in s.events:
            properties = {"amount": value} if value is not None else {"note": "no amount"}
            events.append(
                Event(
                    subject_id=s.subject_id,
                    source="crm",
                    name=segment.conversion_event,
                    purpose=purpose,
                    occurred_at=s.entered_at + timedelta(days=days),
                    received_at=now,
                    properties_encrypted=crypto.encrypt(
                        data_key=keys[s.subject_id],
                        plaintext=json.dumps(properties).encode(),
                        aad=properties_aad(subject_id=s.subject_id),
                    ),
                )
            )
    Event.objects.using(region).bulk_create(events, batch_size=2000)


def expected(stays: list[Stay], *, window: int) -> dict[str, dict]:
    """Per arm: units, conversions, the conversions' values and whole-day cycle lengths."""
    out: dict[str, dict] = {}
    for stay in stays:
        arm = out.setdefault(stay.arm, {"units": 0, "conversions": 0, "values": [], "days": []})
        arm["units"] += 1
        after = sorted(e for e in stay.events if e[0] > 0 and e[2] == "measurement")
        if after and after[0][0] < window and int(after[0][0]) < window:
            arm["conversions"] += 1
            arm["days"].append(int(after[0][0]))
            if after[0][1] is not None:
                arm["values"].append(after[0][1])
    for arm in out.values():
        arm["median_days"] = statistics.median(arm["days"]) if arm["days"] else None
    return out


def computed_segment(
    *, user, key: str, name: str = "Deal makers", n: int = 600, seed: int = 1, share="0.3"
) -> tuple[Segment, list[Stay]]:
    """An active segment (``tests.factories.SegmentFactory``) measuring ``deal_won`` with a
    fixed holdout salt, ``n`` synthetic EU stays (treatment converts at 30%, control at 10%)
    and its lift computed; the segment and the stays."""
    from django.utils import timezone

    from segments.services.lift import lift_compute
    from tests.factories import SegmentFactory

    seg = SegmentFactory(user=user, key=key, name=name, control_group_share=share)
    Segment.objects.filter(pk=seg.pk).update(
        conversion_event="deal_won",
        value_property="amount",
        holdout_salt="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    )
    seg = Segment.objects.get(pk=seg.pk)
    stays = build(
        region="eu", segment=seg, n=n, now=timezone.now(), rate_t=0.3, rate_c=0.1, seed=seed
    )
    lift_compute(region="eu", segment=seg)
    return seg, stays
