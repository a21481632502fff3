"""The lift report of a segment with 1,000,000 stays and 2,000,000 events in one region.

``python -m bench lift`` (PostgreSQL; seeding uses COPY). In one run, on throwaway databases:

1. seed the ``eu`` region with 1,000,000 subjects (each with a real wrapped data key), one stay
   each in one active segment (arms assigned by ``segments.holdout``, 10% control), and
   2,000,000 events: 200,000 ``deal_won`` events for the measurement purpose with an encrypted
   ``amount`` (treatment converts at 22%, control at 18%, some stays twice), 100,000
   ``deal_won`` events for another purpose, 1,700,000 ``page_view`` events;
2. time ``lift_compute(region="eu")`` (what the hourly job runs: aggregates written to the
   control database) and ``lift_report`` (what the API and the admin read), best of 3;
3. baseline, same run: the plain SQL floor of the same answer without values (stays counted per
   arm, each stay's first conversion found with ``DISTINCT ON`` and grouped per arm and day).

Target: ``lift_compute`` under 10 s.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
import uuid
from datetime import timedelta

from bench import copy_rows, guards_off, seed_subjects

SUBJECTS = 1_000_000
CONVERSIONS = 200_000
OTHER_PURPOSE = 100_000
PAGE_VIEWS = 1_700_000
SHARE = 0.1
TARGET_S = 10.0


def _seed(segment, now) -> None:
    from compliance import crypto
    from compliance.events.services.ingest import properties_aad
    from segments.holdout import CONTROL, holdout_arm

    rng = random.Random(17)
    ids = [uuid.uuid4() for _ in range(SUBJECTS)]
    arms = {sid: holdout_arm(salt=segment.holdout_salt, subject_id=sid, share=SHARE) for sid in ids}
    entered = {sid: now - timedelta(days=rng.uniform(1, 300)) for sid in ids}
    converting = [sid for sid in ids if rng.random() < (0.18 if arms[sid] == CONTROL else 0.22)][
        :CONVERSIONS
    ]
    keys = {sid: crypto.new_data_key() for sid in converting}

    def wrapped(sid) -> bytes:  # real keys where a value is read, random bytes elsewhere
        if sid not in keys:
            return os.urandom(40)
        return crypto.wrap_data_key(region="eu", subject_id=str(sid), data_key=keys[sid])

    seed_subjects(alias="eu", region="eu", ids=ids, now=now, wrapped_key=wrapped)
    with guards_off("eu"):
        copy_rows(
            "eu",
            "segments_segmentmembership",
            [
                "subject_id",
                "segment_key",
                "entered_at",
                "entered_reason",
                "exited_reason",
                "consent_event_ids",
                "arm",
            ],
            ((sid, segment.key, entered[sid], "criteria", "", "[]", arms[sid]) for sid in ids),
        )

    def events():
        for sid in converting:
            at = entered[sid] + timedelta(days=rng.uniform(0.1, 120))
            plaintext = json.dumps({"amount": round(rng.lognormvariate(9, 0.7), 2)}).encode()
            blob = crypto.encrypt(
                data_key=keys[sid], plaintext=plaintext, aad=properties_aad(subject_id=sid)
            )
            yield (sid, "crm", "deal_won", "measurement", "", at, now, blob, "[]")
        for _ in range(OTHER_PURPOSE):
            sid = ids[rng.randrange(SUBJECTS)]
            yield (sid, "crm", "deal_won", "audience_segmentation", "", now, now, b"x" * 40, "[]")
        for _ in range(PAGE_VIEWS):
            sid = ids[rng.randrange(SUBJECTS)]
            yield (sid, "web", "page_view", "measurement", "", now, now, b"x" * 40, "[]")

    copy_rows(
        "eu",
        "events_event",
        [
            "subject_id",
            "source",
            "name",
            "purpose",
            "jurisdiction",
            "occurred_at",
            "received_at",
            "properties_encrypted",
            "consent_event_ids",
        ],
        events(),
    )


BASELINE_SQL = """
WITH firsts AS (
    SELECT DISTINCT ON (m.id) m.arm, floor(extract(epoch FROM e.occurred_at - m.entered_at)
        / 86400)::int AS day
    FROM segments_segmentmembership m
    JOIN events_event e ON e.subject_id = m.subject_id AND e.name = 'deal_won'
        AND e.purpose = 'measurement' AND e.occurred_at > m.entered_at
    WHERE m.segment_key = %s
    ORDER BY m.id, e.occurred_at
)
SELECT 'units', arm, NULL, count(*) FROM segments_segmentmembership WHERE segment_key = %s
GROUP BY arm
UNION ALL
SELECT 'conversions', arm, day, count(*) FROM firsts GROUP BY arm, day
"""


def _best(fn, runs: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _scale(argv) -> float:
    """``--scale F`` shrinks every count (profiling runs); the published run uses 1."""
    return float(argv[argv.index("--scale") + 1]) if "--scale" in argv else 1.0


def main(argv) -> int:
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone

    from bench import bench_databases, machine
    from segments.models import Segment
    from segments.selectors.lift import lift_report
    from segments.services.lift import lift_compute

    if connections["eu"].vendor != "postgresql":
        print("lift needs PostgreSQL (set DATABASE_URL, DATABASE_URL_EU, DATABASE_URL_US)")
        return 2
    global SUBJECTS, CONVERSIONS, OTHER_PURPOSE, PAGE_VIEWS
    scale = _scale(argv)
    SUBJECTS, CONVERSIONS, OTHER_PURPOSE, PAGE_VIEWS = (
        int(n * scale) for n in (SUBJECTS, CONVERSIONS, OTHER_PURPOSE, PAGE_VIEWS)
    )
    print(f"machine: {machine()}")
    with bench_databases():
        now = timezone.now()
        owner = get_user_model().objects.create(username="bench-owner")
        segment = Segment.objects.create(
            key="bench-lift",
            name="Bench",
            owner=owner,
            motion="campaign",
            measurement_metric="deal_won rate",
            control_group_share=SHARE,
            layers=["intent"],
            required_purposes=["audience_segmentation", "measurement"],
            status="active",
            conversion_event="deal_won",
            value_property="amount",
            holdout_salt=secrets.token_hex(16),
        )
        t0 = time.perf_counter()
        _seed(segment, now)
        with connections["eu"].cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"seeded {SUBJECTS:,} stays and {CONVERSIONS + OTHER_PURPOSE + PAGE_VIEWS:,} events "
            f"in {time.perf_counter() - t0:.1f}s"
        )

        def baseline():
            with connections["eu"].cursor() as cursor:
                cursor.execute(BASELINE_SQL, [segment.key, segment.key])
                return cursor.fetchall()

        base_s, _rows = _best(baseline)
        if "--profile" in argv:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(lift_compute, region="eu", segment=segment)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        compute_s, run = _best(lambda: lift_compute(region="eu", segment=segment))
        report_s, report = _best(lambda: lift_report(segment=segment), runs=5)
        t, c = report["treatment"], report["control"]
        print(
            f"lift_compute: {compute_s:.2f}s for {run.stays:,} stays, {run.conversions:,} "
            f"conversions (target < {TARGET_S:.0f}s): {'met' if compute_s < TARGET_S else 'NOT met'}"
        )
        print(
            f"plain SQL floor (no values, no storage): {base_s:.2f}s -> ratio {compute_s / base_s:.2f}"
        )
        print(f"lift_report: {report_s * 1000:.1f} ms")
        print(
            f"report: units {t['units']:,}/{c['units']:,}, conversion rate "
            f"{t['conversion_rate']:.4f}/{c['conversion_rate']:.4f}, absolute lift "
            f"{report['absolute_lift']:.4f} {report['absolute_lift_ci']}, srm p "
            f"{report['srm_p_value']:.3f}, mean value {t['mean_value']:.0f}/{c['mean_value']:.0f}"
        )
    return 0
