"""The access report a person can read: what GDPR Art. 15(1)/(2) and the CCPA right to know
require, built from what the toolkit holds (``report.json`` and ``report.html`` in a package).

``access_report_build`` answers, for the subjects of one request: the data held by category
(rows per kind, with the CSV that holds them); per purpose the lawful basis and the consent
history; the recipients (active change-feed subscriptions reaching the person's region, with
their declared purpose); the retention period per category (the region's retention rules); the
sources (event sources and collection points); the segments the person is or was in, with
layers, motion and a plain description of the logic (profiling, Art. 15(1)(h), Art. 22); the
rights and how to exercise them; the controller's contact (``COMPLIANCE_CONTROLLER_*``).

Nothing internal goes in: ``INTERNAL_FIELDS`` (blind indexes, audit tokens, client ids,
idempotency keys, ...) are dropped from every table of the package, not only from the report.
"""

from __future__ import annotations

from collections import defaultdict

from django.template.loader import render_to_string
from django.utils import timezone

from compliance.conf import compliance_settings
from compliance.consent.models import Decision, EventSource, LawfulBasis, Method, Purpose
from compliance.dsar.models import Regulation, RequestType
from compliance.dsar.services.report_words import (
    CATEGORY_WORDS,
    CCPA_RIGHTS,
    CHANGE_KIND_WORDS,
    GDPR_RIGHTS,
    MOTION_WORDS,
    RETENTION_CATEGORY,
)
from compliance.feed.models import Subscription
from compliance.personal_data import personal_data_models
from compliance.retention.models import Category, RetentionRule
from segments.models import ExitReason, Layer, Motion, Segment

REPORT_VERSION = 1


def controller_contact() -> dict:
    """The controller's contact from settings (``COMPLIANCE_CONTROLLER_*``)."""
    return {
        "name": compliance_settings.CONTROLLER_NAME,
        "email": compliance_settings.CONTROLLER_EMAIL,
        "address": compliance_settings.CONTROLLER_ADDRESS,
        "dpo_email": compliance_settings.DPO_EMAIL,
    }


def short_reference(request_id) -> str:
    """The request's short reference people and officers quote: the first 8 hex digits."""
    return str(request_id).replace("-", "")[:8].upper()


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _categories(tables: dict[str, list[dict]], region: str) -> list[dict]:

    rules = {
        r.category: r.max_age_days
        for r in RetentionRule.objects.filter(region=region, is_active=True)
    }
    registry = {e.label: e for e in personal_data_models()}
    out = []
    for label, rows in tables.items():
        entry = registry.get(label)
        retention_category = RETENTION_CATEGORY.get(label)
        days = rules.get(retention_category) if retention_category else None
        if days is not None:
            words = Category(retention_category).label
            retention = f"{days} days ({words}), then deleted automatically"
        elif label == "dsar.PrivacyRequest":
            retention = "kept as proof of how we answered you, without your identifiers"
        else:
            retention = "as long as the purposes below need it, or until you ask us to erase it"
        out.append(
            {
                "key": label,
                "category": CATEGORY_WORDS.get(label, entry.description if entry else label),
                "description": entry.description if entry else "",
                "records": len(rows),
                "file": f"tables/{label}.csv",
                "retention": retention,
                "retention_days": days,
            }
        )
    return out


def _purposes(tables: dict[str, list[dict]]) -> list[dict]:

    history: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(tables.get("consent.ConsentEvent", []), key=lambda r: r["captured_at"]):
        history[row["purpose"]].append(
            {
                "at": row["captured_at"],
                "decision": Decision(row["decision"]).label
                if row["decision"] in Decision.values
                else row["decision"],
                "lawful_basis": _basis_words(row["lawful_basis"]),
                "source": row["source"],
                "method": Method(row["method"]).label
                if row["method"] in Method.values
                else row["method"],
                "collection_point": row.get("collection_point") or "",
                "expires_at": row.get("expires_at"),
            }
        )
    current = {}
    for row in tables.get("consent.ConsentState", []):
        current.setdefault(row["purpose"], []).append(row)
    used = set(history) | set(current)
    used |= {row["purpose"] for row in tables.get("events.Event", [])}
    definitions = {p.key: p for p in Purpose.objects.filter(key__in=used)}
    out = []
    for key in sorted(used):
        purpose = definitions.get(key)
        states = current.get(key, [])
        bases = sorted({_basis_words(s["lawful_basis"]) for s in states}) or sorted(
            {h["lawful_basis"] for h in history.get(key, [])}
        )
        if not bases and purpose is not None:
            bases = [LawfulBasis(b).label for b in purpose.lawful_bases if b in LawfulBasis.values]
        out.append(
            {
                "key": key,
                "name": purpose.name if purpose else key,
                "description": purpose.description if purpose else "",
                "lawful_basis": bases,
                "current": [
                    {
                        "decision": s["decision"],
                        "lawful_basis": _basis_words(s["lawful_basis"]),
                        "source": s.get("source") or "every source",
                        "since": s.get("captured_at"),
                        "expires_at": s.get("expires_at"),
                    }
                    for s in states
                ],
                "consent_history": history.get(key, []),
            }
        )
    return out


def _basis_words(value: str) -> str:

    return LawfulBasis(value).label if value in LawfulBasis.values else value


def _recipients(region: str) -> dict:

    recipients = []
    categories = set()
    for sub in Subscription.objects.filter(is_active=True).order_by("name"):
        if sub.regions and region not in sub.regions:
            continue
        receives = [CHANGE_KIND_WORDS.get(k, k) for k in sub.event_types]
        categories.add("systems of ours and our service providers that act on audience segments")
        recipients.append(
            {
                "name": sub.name,
                "purpose": sub.purpose or "not declared",
                "receives": receives,
                "segments": list(sub.segments) or ["every segment"],
            }
        )
    return {"recipients": recipients, "categories": sorted(categories)}


def _sources(tables: dict[str, list[dict]]) -> list[dict]:

    found: dict[str, dict] = {}
    for label, kind in (("consent.ConsentEvent", "consent"), ("events.Event", "events")):
        for row in tables.get(label, []):
            item = found.setdefault(row["source"], {"kinds": set(), "collection_points": set()})
            item["kinds"].add(kind)
            if row.get("collection_point"):
                item["collection_points"].add(row["collection_point"])
    definitions = {s.key: s for s in EventSource.objects.filter(key__in=list(found))}
    words = {"consent": "your consent decisions", "events": "your activity"}
    return [
        {
            "key": key,
            "name": definitions[key].name if key in definitions else key,
            "channel": definitions[key].channel if key in definitions else "",
            "collected": [words[k] for k in sorted(item["kinds"])],
            "collection_points": sorted(item["collection_points"]),
        }
        for key, item in sorted(found.items())
    ]


def segment_logic(segment) -> str:
    """A plain description of what a segment is and what being in it does."""
    layers = ", ".join(_layer_words(segment.layers)) or "no stated kind of"
    parts = [f"This segment groups people using {layers} data."]
    if segment.description:
        parts.append(f"Its definition: {segment.description.strip().rstrip('.')}.")
    if segment.motion:
        effect = MOTION_WORDS.get(segment.motion, segment.get_motion_display())
        parts.append(f"When someone enters it, {effect}")
        parts[-1] += (
            f" ({segment.motion_detail.strip().rstrip('.')})." if segment.motion_detail else "."
        )
    if segment.required_purposes:
        parts.append(
            "We place you in it only while you allow: " + ", ".join(segment.required_purposes) + "."
        )
    if segment.origin == "ai_suggested":
        parts.append("The segment was suggested by an automated tool and approved by a person.")
    parts.append(
        "This is profiling. It is not used to take decisions that have legal or similarly "
        "significant effects on you; you may object to it at any time."
    )
    return " ".join(parts)


def _layer_words(layers) -> list[str]:

    return [Layer(x).label.lower() if x in Layer.values else x for x in layers or []]


def _segments(tables: dict[str, list[dict]]) -> list[dict]:

    stays: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(tables.get("segments.SegmentMembership", []), key=lambda r: r["entered_at"]):
        reason = row.get("exited_reason") or ""
        stays[row["segment_key"]].append(
            {
                "entered_at": row["entered_at"],
                "entered_because": "you matched its criteria"
                if row.get("entered_reason") == "criteria"
                else "added by hand",
                "exited_at": row.get("exited_at"),
                "exited_because": ExitReason(reason).label
                if reason in ExitReason.values
                else reason,
                "active": row.get("exited_at") is None,
            }
        )
    definitions = {s.key: s for s in Segment.objects.filter(key__in=list(stays))}
    out = []
    for key, items in sorted(stays.items()):
        segment = definitions.get(key)
        out.append(
            {
                "key": key,
                "name": segment.name if segment else key,
                "layers": _layer_words(segment.layers) if segment else [],
                "motion": Motion(segment.motion).label
                if segment and segment.motion in Motion.values
                else "",
                "what_happens": segment.motion_detail if segment else "",
                "purposes": list(segment.required_purposes) if segment else [],
                "logic": segment_logic(segment)
                if segment
                else "This segment no longer exists; its definition was retired.",
                "currently_in": any(s["active"] for s in items),
                "stays": items,
            }
        )
    return out


def _rights(regulation: str) -> dict:
    contact = controller_contact()
    how = (
        f"Write to {contact['name']} at {contact['email']}"
        + (f" or {contact['address']}" if contact["address"] else "")
        + ". We answer within one month (GDPR; extendable by two months for complex requests) "
        "or 45 days (CCPA; extendable once by 45 days), and may ask you to confirm your identity."
    )
    rights = CCPA_RIGHTS if regulation == "ccpa" else GDPR_RIGHTS
    return {
        "regulation": regulation,
        "rights": [{"key": k, "reference": ref, "right": text} for k, ref, text in rights],
        "how_to_exercise": how,
    }


def access_report_build(
    *, request, region: str, tables: dict[str, list[dict]], generated_at: str | None = None
) -> dict:
    """``report.json``: every Art. 15(1)/(2) (and CCPA right-to-know) element for the person
    whose (already filtered) ``tables`` are given. Reads definitions from ``default``."""

    recipients = _recipients(region)
    return {
        "report_version": REPORT_VERSION,
        "request": {
            "reference": short_reference(request.pk),
            "id": str(request.pk),
            "type": RequestType(request.type).label,
            "regulation": Regulation(request.regulation).label,
            "received_at": _iso(request.received_at),
        },
        "generated_at": generated_at or timezone.now().isoformat(),
        "controller": controller_contact(),
        "stored_in_region": region,
        "data_categories": _categories(tables, region),
        "purposes": _purposes(tables),
        "recipients": recipients["recipients"],
        "recipient_categories": recipients["categories"],
        "retention": [
            {"category": c["category"], "period": c["retention"]}
            for c in _categories(tables, region)
        ],
        "sources": _sources(tables),
        "segments": _segments(tables),
        "automated_decision_making": {
            "profiling": bool(tables.get("segments.SegmentMembership")),
            "explanation": "We group people into audience segments (profiling, GDPR Art. 4(4)) "
            "to choose campaigns, advertising, sales contacts or website content. Each segment "
            "below says what it is built from and what it changes. No decision with legal or "
            "similarly significant effects on you is taken solely by automated means "
            "(GDPR Art. 22).",
        },
        "rights": _rights(request.regulation),
        "files": {
            "report.html": "this report, for reading and printing",
            "report.json": "this report, machine-readable",
            "data.json": "all your data, machine-readable",
            "tables/": "one CSV file per kind of data (with headers, even when empty)",
        },
    }


def access_report_html(*, report: dict) -> str:
    """``report.html``: the report rendered self-contained (inline style, no external asset)."""
    return render_to_string("dsar/access_report.html", {"report": report})
