"""One statement of the consent rules: the gate (``consent_gate_positions``, which reads state
rows grouped by what the rules read: one SQL ``GROUP BY`` on PostgreSQL, the same grouping in
``compliance.consent.sql`` elsewhere) answers every subject as the Python evaluator
(``can_process_bulk``, per-row records and history) does, over randomised ledgers (seeded,
deterministic): purposes of every kind of basis, global and source-scoped records, grants,
denials, withdrawals, objections, opt-outs, expiries exactly at and a microsecond around the
evaluation time, invalid signals, timestamp ties, history before the latest state, and merged
subjects. Over 20,000 cases per seed on both backends; a gate that compared an expiry with
``>=`` instead of ``>`` disagrees on some of them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from compliance.audit.services.append import Actor
from compliance.consent.models import ConsentEvent, Decision, Purpose, Scope
from compliance.consent.selectors.evaluation import can_process_bulk, consent_gate_positions
from compliance.consent.services.projection import state_rebuild
from compliance.models import Subject
from compliance.regions import region_alias

pytestmark = pytest.mark.django_db(databases="__all__")

REGION = "eu"
BASE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: key -> (lawful bases, consent required in, active)
PURPOSES = {
    "dg_consent": (["consent"], [], True),
    "dg_li": (["consent", "legitimate_interests"], ["FR"], True),
    "dg_us": (["consent", "us_opt_out"], ["FR", "DE"], True),
    "dg_contract": (["consent", "contract"], ["FR"], True),
    "dg_public": (["public_task"], [], True),
    "dg_everywhere": (["consent", "legitimate_interests"], ["*"], True),
    "dg_off": (["consent"], [], False),
}
KEYS = [*PURPOSES, "dg_unknown"]
PURPOSE_SETS = [
    *[[key] for key in KEYS],
    ["dg_consent", "dg_li"],
    ["dg_us", "dg_public", "dg_contract"],
    ["dg_li", "dg_everywhere", "dg_consent", "dg_li"],
    ["dg_public", "dg_unknown"],
]
JURISDICTIONS = ["FR", "DE", "US-CA", "US", "GB", ""]
SOURCES = ["web", "crm", "ios_app"]
DECISIONS = [
    Decision.GRANTED,
    Decision.GRANTED,
    Decision.GRANTED,
    Decision.DENIED,
    Decision.WITHDRAWN,
    Decision.OBJECTED,
    Decision.OPTED_OUT,
    Decision.EXPIRED,
    Decision.INVALID_SIGNAL,
]
#: evaluation times: after the whole ledger, and inside it (states later than ``at`` are
#: folded from history)
TIMES = [BASE, BASE - timedelta(days=20)]
#: capture times on a coarse grid, so that ties (decided by event id) happen
OFFSETS = [timedelta(days=-d) for d in (0, 1, 5, 19, 20, 21, 40, 90, 200, 400)]


def _expiry(rng: random.Random, captured: datetime):
    roll = rng.random()
    if roll < 0.5:
        return None
    if roll < 0.6:  # exactly at, or a microsecond around, one of the evaluation times
        return rng.choice(TIMES) + timedelta(microseconds=rng.choice([-1, 0, 1]))
    return captured + timedelta(days=rng.choice([1, 10, 30, 100, 395]))


def _ledger(rng: random.Random, subject_ids: list[uuid.UUID]) -> list[ConsentEvent]:
    events = []
    for sid in subject_ids:
        jurisdiction = rng.choice(JURISDICTIONS)
        for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9])):
            captured = BASE + rng.choice(OFFSETS)
            scoped = rng.random() < 0.3
            events.append(
                ConsentEvent(
                    subject_id=sid,
                    purpose=rng.choice(KEYS),
                    purpose_version=1,
                    source=rng.choice(SOURCES),
                    scope=Scope.SOURCE if scoped else Scope.GLOBAL,
                    # mostly the subject's own jurisdiction; sometimes another, or none
                    jurisdiction=jurisdiction if rng.random() < 0.8 else rng.choice(JURISDICTIONS),
                    lawful_basis="consent",
                    decision=rng.choice(DECISIONS),
                    method="api",
                    captured_at=captured,
                    received_at=captured,
                    expires_at=_expiry(rng, captured),
                    actor_type="system",
                    actor_id="test",
                )
            )
    rng.shuffle(events)  # ids out of capture order, as late arrivals make them
    return events


def _python(region, ids, keys, at):
    """The gate's answer built from ``can_process_bulk``: the first purpose refused, or the
    sorted deciding events of every purpose."""
    decisions = can_process_bulk(region=region, subject_ids=ids, purposes=keys, at=at)
    refused, events = {}, []
    for position, sid in enumerate(ids):
        deciding: set[int] = set()
        for key in dict.fromkeys(keys):
            decision = decisions[(sid, key)]
            if not decision.allowed:
                refused[position] = key
                break
            deciding.update(decision.event_ids)
        events.append(None if position in refused else sorted(deciding))
    return refused, events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_gate_agrees_with_python_evaluator(seed):
    rng = random.Random(seed)
    alias = region_alias(region=REGION)
    for key, (bases, required_in, active) in PURPOSES.items():
        Purpose.objects.update_or_create(
            key=key,
            defaults={
                "name": key,
                "lawful_bases": bases,
                "consent_required_in": required_in,
                "is_active": active,
            },
        )
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(600)]
    survivors = {sid: rng.choice(ids[:400]) for sid in ids[500:]}  # the last 100 are merged
    Subject.objects.using(alias).bulk_create(
        [Subject(id=sid, region=REGION, merged_into=survivors.get(sid)) for sid in ids]
    )
    ConsentEvent.objects.using(alias).bulk_create(_ledger(rng, ids), batch_size=2000)
    state_rebuild(region=REGION, actor=Actor.system("test"), subject_ids=ids)
    asked = [*ids, *rng.sample(ids, 20)]  # a few subjects asked twice
    rng.shuffle(asked)

    live = [sid for sid in asked if sid not in survivors]
    cases = 0
    report: list[str] = []
    disagreements = {"merged": 0, "live": 0}
    # every subject, and the live ones only with the caller's promise that none is merged
    for subjects, merged_excluded in [(asked, False), (live, True)]:
        for keys in PURPOSE_SETS:
            for at in TIMES:
                expected = _python(REGION, subjects, keys, at)
                refused, events = consent_gate_positions(
                    region=REGION,
                    subject_ids=subjects,
                    purposes=keys,
                    at=at,
                    merged_excluded=merged_excluded,
                )
                for position, sid in enumerate(subjects):
                    cases += 1
                    ours = (refused.get(position), events[position])
                    theirs = (expected[0].get(position), expected[1][position])
                    if ours != theirs:
                        merged = "merged" if sid in survivors else "live"
                        disagreements[merged] += 1
                        if len(report) < 10:
                            report.append(
                                f"{keys} at {at:%Y-%m-%d} {merged} {sid}: {ours} != {theirs}"
                            )
    assert cases > 20_000
    assert not any(disagreements.values()), f"{disagreements} of {cases} disagree:\n" + "\n".join(
        report
    )
    # the ledgers reach every rule: each reason, and allowed on each basis
    seen = {
        (decision.allowed, decision.basis, decision.reason)
        for at in TIMES
        for decision in can_process_bulk(
            region=REGION, subject_ids=asked, purposes=KEYS, at=at
        ).values()
    }
    assert {reason for _, _, reason in seen} >= {
        "granted", "no_record", "expired", "unreadable_signal", "denied", "withdrawn",
        "objected", "opted_out", "no_objection", "not_opted_out", "contract",
        "unknown_purpose",
    }  # fmt: skip
    assert {basis for allowed, basis, _ in seen if allowed} == {
        "consent", "legitimate_interests", "us_opt_out", "contract", "public_task",
    }  # fmt: skip
