"""The evidence report: counts for a period, computed only from the audit chains' entries.

``EvidenceStats.feed(chain_id, row)`` takes raw rows (``rows.iter_rows`` tuples) one at a time,
so the export can build the report while it streams entries, in constant memory.
Payload conventions it reads (see docs/audit.md): consent 1xx ``{"source", "decision"}``,
DSAR 3xx ``{"request_type", "to", "on_time"}``, segment definitions 505-508 ``{"from", "to"}``,
memberships 201/202 with ``object_id`` = segment key and ``{"reason"}``, reviews 508
``{"decision", "lift"}`` (the lift figures the decision was made on).

``lift_evidence()`` is the one part not read from the chains: the current lift figures of
every segment whose lift has been computed (aggregates of the control database, with their
``computed_at``; never a subject). The report shows them in its segment section and the
bundle carries them as ``lift.json``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Min
from django.template.loader import render_to_string
from django.utils import timezone

from compliance.audit.codes import AuditCode, code_group, code_name
from compliance.audit.models import AuditEvent
from compliance.audit.selectors.rows import iter_rows
from segments.models import Status as SegmentStatus
from segments.selectors.lift import lift_figures, lift_reports

TERMINAL_REQUEST_STATUSES = {"completed", "rejected", "failed", "cancelled"}
SEGMENT_CODES = {
    AuditCode.SEGMENT_CREATED,
    AuditCode.SEGMENT_CHANGED,
    AuditCode.SEGMENT_STATUS_CHANGED,
    AuditCode.SEGMENT_REVIEWED,
}

#: section -> questionnaire controls it answers
CONTROLS = [
    (
        "Audit events by type",
        "ISO/IEC 27001:2022 A.8.15 (logging); SOC 2 CC7.2 (monitoring of system components); "
        "NIST SP 800-53 AU-2, AU-12",
    ),
    (
        "Chain status and signed heads",
        "ISO/IEC 27001:2022 A.8.15, A.5.33 (protection of records); NIST SP 800-53 AU-9 "
        "(protection of audit information), AU-10 (non-repudiation); SOC 2 CC7.2",
    ),
    (
        "Data subject requests and on-time rate",
        "ISO/IEC 27001:2022 A.5.34 (privacy and protection of PII); SOC 2 P5.1, P5.2 (access), "
        "P4.3 (disposal); CSA CAIQ DSP-11, DSP-12 (data subject rights)",
    ),
    (
        "Consent decisions by source",
        "ISO/IEC 27001:2022 A.5.34; SOC 2 P2.1 (choice and consent), P3.2 (explicit consent); "
        "CSA CAIQ DSP-10, DSP-11",
    ),
    (
        "Segment reviews and membership changes",
        "ISO/IEC 27001:2022 A.5.34; SOC 2 P3.1, P4.1 (use limited to identified purposes); "
        "CSA CAIQ DSP-05, DSP-08 (data processing and purpose); NIST SP 800-53 AU-10",
    ),
    (
        "Export bundle (signed manifest, offline verifier)",
        "NIST SP 800-53 AU-9(3) (cryptographic protection), AU-10; ISO/IEC 27001:2022 A.8.15; "
        "SOC 2 CC7.2",
    ),
]


@dataclass
class EvidenceStats:
    by_code: Counter = field(default_factory=Counter)
    by_group: Counter = field(default_factory=Counter)
    by_chain: Counter = field(default_factory=Counter)
    dsar_opened: Counter = field(default_factory=Counter)
    dsar_closed: Counter = field(default_factory=Counter)
    dsar_on_time: Counter = field(default_factory=Counter)
    consent: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    segment_events: Counter = field(default_factory=Counter)
    segment_transitions: Counter = field(default_factory=Counter)
    segments_reviewed: set = field(default_factory=set)
    membership: Counter = field(default_factory=Counter)
    review_decisions: list = field(default_factory=list)

    def feed(self, chain_id: str, row: tuple) -> None:
        code, payload = row[2], row[8]
        self.by_code[code] += 1
        self.by_group[code_group(code)] += 1
        self.by_chain[chain_id] += 1
        hundred = code // 100
        if hundred == 1 and row[6] == "consent_event":
            source = str(payload.get("source") or "unknown")
            self.consent[source][str(payload.get("decision") or code_name(code))] += 1
        elif hundred == 3:
            kind = str(payload.get("request_type") or "unknown")
            if code == AuditCode.REQUEST_OPENED:
                self.dsar_opened[kind] += 1
            elif payload.get("to") in TERMINAL_REQUEST_STATUSES and "on_time" in payload:
                self.dsar_closed[kind] += 1
                if payload.get("on_time") is True:
                    self.dsar_on_time[kind] += 1
        elif code in SEGMENT_CODES:
            self.segment_events[code_name(code)] += 1
            if code == AuditCode.SEGMENT_REVIEWED:
                self.segments_reviewed.add(row[7])
                if payload.get("decision"):
                    self.review_decisions.append(_decision(row[7], row[1], payload))
            if payload.get("from") or payload.get("to"):
                key = (str(payload.get("from") or "-"), str(payload.get("to") or "-"))
                self.segment_transitions[key] += 1
        elif code in (AuditCode.MEMBERSHIP_ENTERED, AuditCode.MEMBERSHIP_EXITED):
            self.membership[(code_name(code), str(payload.get("reason") or "-"))] += 1

    # --- presentation ------------------------------------------------------------------------
    def context(self) -> dict:
        dsar_rows = []
        for kind in sorted(set(self.dsar_opened) | set(self.dsar_closed)):
            closed = self.dsar_closed[kind]
            on_time = self.dsar_on_time[kind]
            dsar_rows.append(
                {
                    "type": kind,
                    "opened": self.dsar_opened[kind],
                    "closed": closed,
                    "on_time": on_time,
                    "rate": f"{on_time / closed:.0%}" if closed else "n/a",
                }
            )
        closed_all = sum(self.dsar_closed.values())
        decisions = sorted({d for counts in self.consent.values() for d in counts})
        consent_rows = [
            {
                "source": source,
                "cells": [counts[d] for d in decisions],
                "total": sum(counts.values()),
            }
            for source, counts in sorted(self.consent.items())
        ]
        return {
            "total": sum(self.by_code.values()),
            "by_chain": sorted(self.by_chain.items()),
            "group_bars": bars(sorted(self.by_group.items())),
            "code_rows": [
                {"code": c, "name": code_name(c), "group": code_group(c), "count": n}
                for c, n in sorted(self.by_code.items())
            ],
            "dsar_rows": dsar_rows,
            "dsar_bars": bars([(r["type"], r["opened"]) for r in dsar_rows]),
            "dsar_on_time_rate": (
                f"{sum(self.dsar_on_time.values()) / closed_all:.0%}" if closed_all else "n/a"
            ),
            "consent_decisions": decisions,
            "consent_rows": consent_rows,
            "consent_bars": bars([(r["source"], r["total"]) for r in consent_rows]),
            "segment_events": sorted(self.segment_events.items()),
            "segment_transitions": [
                {"from": a, "to": b, "count": n}
                for (a, b), n in sorted(self.segment_transitions.items())
            ],
            "segments_reviewed": len(self.segments_reviewed),
            "membership_rows": [
                {"event": e, "reason": r, "count": n}
                for (e, r), n in sorted(self.membership.items())
            ],
            "review_decisions": self.review_decisions,
            "controls": CONTROLS,
        }


def _decision(segment_key: str, occurred_at: str, payload: dict) -> dict:
    lift = payload.get("lift") or {}
    return {
        "segment": segment_key,
        "reviewed_at": occurred_at,
        "decision": payload["decision"],
        "absolute_lift": lift.get("absolute_lift"),
        "absolute_lift_ci": lift.get("absolute_lift_ci"),
        "units": [lift.get(arm, {}).get("units") for arm in ("treatment", "control")]
        if lift
        else None,
        "srm_flag": lift.get("srm_flag"),
    }


def lift_evidence() -> list[dict]:
    """``lift_figures`` (own window, since activation) of every segment whose lift has been
    computed, with its key, name and status, by key: aggregates only."""
    return [
        {"segment": r["segment"], "name": r["name"], "status": r["status"], **lift_figures(r)}
        for r in lift_reports(statuses=tuple(SegmentStatus.values))
    ]


def bars(items: list[tuple[str, int]], *, width: int = 360, height: int = 18) -> dict:
    """Geometry of a horizontal bar chart drawn as inline SVG by ``audit/_bars.html``."""
    top = max((value for _, value in items), default=0) or 1
    rows = []
    for index, (label, value) in enumerate(items):
        rows.append(
            {
                "label": label,
                "value": value,
                "y": index * (height + 6),
                "text_y": index * (height + 6) + height - 5,
                "width": max(1, round(width * value / top)) if value else 0,
            }
        )
    return {
        "rows": rows,
        "height": len(rows) * (height + 6),
        "bar_height": height,
        "width": width,
        "label_width": 160,
        "total_width": 160 + width + 80,
        "value_x": 160 + width + 8,
    }


def seq_range(*, using: str, start: datetime, end: datetime) -> tuple[int, int] | None:
    """First and last seq of the entries of ``using`` with ``start <= occurred_at < end``.

    Everything between them is taken (a contiguous run), so the chain can be checked across it.
    """
    bounds = (
        AuditEvent.objects.using(using)
        .filter(occurred_at__gte=start, occurred_at__lt=end)
        .aggregate(first=Min("seq"), last=Max("seq"))
    )
    if bounds["first"] is None:
        return None
    return bounds["first"], bounds["last"]


def evidence_stats(*, aliases: list[str], start: datetime, end: datetime) -> EvidenceStats:
    stats = EvidenceStats()
    for alias in aliases:
        span = seq_range(using=alias, start=start, end=end)
        if span is None:
            continue
        for row in iter_rows(using=alias, start_seq=span[0], end_seq=span[1]):
            stats.feed(alias, row)
    return stats


def report_render(
    *,
    stats: EvidenceStats,
    start: datetime,
    end: datetime,
    chains: list[dict],
    standalone=True,
    lift: list[dict] | None = None,
) -> str:
    """The report's HTML (no external resources: inline CSS and SVG). ``lift`` defaults to
    ``lift_evidence()``."""
    context = stats.context()
    context.update(
        {
            "start": start,
            "end": end,
            "generated_at": timezone.now(),
            "chains": chains,
            "standalone": standalone,
            "lift": lift_evidence() if lift is None else lift,
        }
    )
    return render_to_string("audit/report.html", context)
